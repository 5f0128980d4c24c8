package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Version is set at build time with -ldflags "-X .../cmd.Version=v1.2.3".
var Version = "dev"

// usageError is a mistake in the command line: exit code 2, with a hint.
type usageError struct {
	msg  string
	hint string
}

func (e *usageError) Error() string { return e.msg }

// configError is a configuration that does not load: exit code 2. Its
// diagnostics were already printed.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// errCheckFailed means a check ran and found a problem: exit code 1. What
// failed was already printed.
var errCheckFailed = errors.New("check failed")

const usage = `embedtoken: narrowed, nested access tokens for every API a request reaches.

Usage: embedtoken <command> [flags]

Commands:
  check    validate a configuration; print APIs, call graph and token sizes
  keygen   write a signing key and add its public key to a JWKS file
  mint     mint the embedded map (or a whole outer token) for a subject
  inspect  decode an outer or inner token and its embedded tokens
  hook     run the issuer plugin (Ory Hydra token hook, generic hook, JWKS)
  sidecar  run the sidecar in front of one service
  demo     run the whole chain on loopback with the shipped example
  version  print the version

Kubernetes sidecar injection (inject, injector) is in embedtoken-kube, and
Envoy's gRPC ext_authz (authz_grpc_listen) in embedtoken-envoy: second
binaries, so that the sidecar links none of their dependencies.

Run 'embedtoken <command> --help' for a command's flags.
`

// Run runs the subcommand named by args[0]. It writes normal output to
// stdout and messages to stderr; Exit turns the error into an exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{msg: "no command given"}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "check":
		return runCheck(ctx, rest, stdout, stderr)
	case "keygen":
		return runKeygen(ctx, rest, stdout, stderr)
	case "mint":
		return runMint(ctx, rest, stdout, stderr)
	case "inspect":
		return runInspect(ctx, rest, stdout, stderr)
	case "hook":
		return runHook(ctx, rest, stdout, stderr)
	case "sidecar":
		return runSidecar(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "version", "--version", "-version":
		fs := newFlags("version", "version", stderr)
		if err := parseFlags(fs, rest, 0); err != nil {
			return err
		}
		fmt.Fprintln(stdout, versionText())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "inject", "injector":
		// A second binary, so that the sidecar links none of it (README,
		// "Running in Kubernetes").
		return &usageError{msg: name + " is a command of embedtoken-kube",
			hint: "run 'embedtoken-kube " + name + " --help' (in the image, or: go build ./cmd/embedtoken-kube)"}
	default:
		return unknownCommand(name)
	}
}

// Exit maps err to the documented process exit code and prints it: 0 ok,
// 1 a check failed, 2 usage or configuration error.
func Exit(err error, stderr io.Writer) int {
	var ue *usageError
	var ce *configError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errCheckFailed):
		return 1
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "embedtoken: %s\n", userText(ue))
		if ue.hint != "" {
			fmt.Fprintf(stderr, "hint: %s\n", ue.hint)
		}
		return 2
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "embedtoken: %s\n", userText(ce))
		return 2
	case errors.Is(err, context.Canceled):
		return 0
	default:
		fmt.Fprintf(stderr, "embedtoken: %s\n", userText(err))
		return 1
	}
}

// newFlags returns a flag set that reports errors instead of exiting and
// prints its usage with a one-line synopsis.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: embedtoken %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors and
// refusing stray positional arguments unless maxArgs allows them. Flags may
// follow positional arguments (`inspect TOKEN --jwks FILE`); "--" ends the
// flags. The positional arguments are returned.
func parseFlags(fs *flag.FlagSet, args []string, maxArgs int) error {
	// The flag package prints a bad flag and the usage itself; Exit prints
	// it once, with a hint, and --help prints the usage.
	usageFn, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = usageFn; fs.SetOutput(out) }()
	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(out)
				usageFn()
				return err
			}
			return &usageError{msg: err.Error(), hint: fmt.Sprintf("run 'embedtoken %s --help'", fs.Name())}
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		// flag stops at the first non-flag argument, or after "--".
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		rest = rest[1:]
		args = rest
	}
	if len(positional) > maxArgs {
		return &usageError{msg: fmt.Sprintf("unexpected arguments: %s", strings.Join(positional[maxArgs:], " ")),
			hint: fmt.Sprintf("run 'embedtoken %s --help'", fs.Name())}
	}
	// Leave the positional arguments where fs.Args() finds them.
	_ = fs.Parse(append([]string{"--"}, positional...))
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
