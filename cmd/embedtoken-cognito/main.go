// Command embedtoken-cognito is the AWS Cognito pre token generation
// Lambda (event versions V2_0 and V3_0): it adds the embedded map to every
// access token the user pool issues. A binary of its own, so that the AWS
// Lambda dependency never weighs on `embedtoken` and its sidecar.
//
// Configuration (environment):
//
//	EMBEDTOKEN_CONFIG                  the HCL configuration (files or folders,
//	                                   separated by ':'; default "hcl"), with the
//	                                   minter's signing key files
//	EMBEDTOKEN_ACCESS_TOKEN_VALIDITY   the app client's access-token validity
//	                                   (Go duration, e.g. "1h"; required): inner
//	                                   tokens never outlive now + this
//
// Run as the Lambda's bootstrap (provided.al2023 runtime), or locally:
// `embedtoken-cognito invoke < event.json` prints the event with its
// response, as Cognito would receive it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/internal/cognito"
	"github.com/embedtoken/embedtoken/mint"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run returns the exit code: 0 ok, 1 an event refused, 2 usage or
// configuration error.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	h, log, err := newHandler(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "embedtoken-cognito: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	switch {
	case len(args) == 1 && args[0] == "invoke":
		payload, err := io.ReadAll(io.LimitReader(stdin, cognito.MaxEventBytes+1))
		if err != nil {
			fmt.Fprintf(stderr, "embedtoken-cognito: read the event: %v\n", err)
			return 2
		}
		out, err := h.Invoke(context.Background(), payload)
		if err != nil {
			fmt.Fprintf(stderr, "embedtoken-cognito: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(append(out, '\n'))
		return 0
	case len(args) == 0:
		if os.Getenv("AWS_LAMBDA_RUNTIME_API") == "" {
			fmt.Fprintln(stderr, "embedtoken-cognito: not in a Lambda runtime (AWS_LAMBDA_RUNTIME_API unset); use `embedtoken-cognito invoke < event.json` to try an event")
			return 2
		}
		lambda.StartHandler(h)
		return 0
	default:
		fmt.Fprintln(stderr, "usage: embedtoken-cognito [invoke]")
		return 2
	}
}

// newHandler loads the configuration named by the environment.
func newHandler(stderr io.Writer) (*cognito.Handler, *zap.Logger, error) {
	validity, err := time.ParseDuration(os.Getenv("EMBEDTOKEN_ACCESS_TOKEN_VALIDITY"))
	if err != nil || validity <= 0 {
		return nil, nil, errors.New("EMBEDTOKEN_ACCESS_TOKEN_VALIDITY must be a positive Go duration (the app client's access-token validity, e.g. 1h)")
	}
	configs := filepath.SplitList(os.Getenv("EMBEDTOKEN_CONFIG"))
	if len(configs) == 0 {
		configs = []string{"hcl"}
	}
	cat, _, diags := catalog.LoadFiles(configs, &catalog.Options{Keys: catalog.KeysRequire})
	for _, d := range diags {
		fmt.Fprintln(stderr, strings.TrimSpace(d.Error()))
	}
	if diags.HasErrors() {
		return nil, nil, fmt.Errorf("configuration has errors")
	}
	log, err := zap.NewProduction()
	if err != nil {
		return nil, nil, err
	}
	m, err := mint.New(cat, &mint.Options{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	return &cognito.Handler{Minter: m, Validity: validity}, log, nil
}
