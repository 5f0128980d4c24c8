package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/embedtoken/embedtoken/unwrap"
)

// maxInspectInput bounds what inspect reads from stdin, a file or a URL.
const maxInspectInput = 1 << 20

func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inspect", "inspect [TOKEN|-] [--jwks FILE|URL]... [--json]", stderr)
	var jwks stringList
	asJSON := fs.Bool("json", false, "print the tokens as JSON")
	fs.Var(&jwks, "jwks", "JWKS file or http(s) URL: also verify signatures (repeatable: the issuer's and the minter's)")
	if err := parseFlags(fs, args, 1); err != nil {
		return err
	}
	var token string
	if arg := fs.Arg(0); arg != "" && arg != "-" {
		token = arg
	} else {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, maxInspectInput))
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		token = string(b)
	}
	token = strings.TrimSpace(token)
	if scheme, rest, ok := strings.Cut(token, " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(rest)
	}
	if token == "" {
		return &usageError{msg: "no token given", hint: "pass the token as an argument, or '-' to read it from stdin"}
	}
	if err := notAJWT(token); err != nil {
		return err
	}
	opts := &unwrap.InspectOptions{}
	for _, src := range jwks {
		b, err := readJWKS(ctx, src)
		if err != nil {
			return fmt.Errorf("read --jwks %s: %w", src, err)
		}
		opts.JWKS = append(opts.JWKS, b)
	}
	n, err := unwrap.Inspect(token, opts)
	if err != nil {
		return err
	}
	var failed bool
	if *asJSON {
		if failed, err = writeTokenJSON(stdout, n, time.Now()); err != nil {
			return err
		}
	} else {
		failed = writeTokenTree(stdout, n, time.Now(), "", true, true)
	}
	if failed {
		return errCheckFailed
	}
	return nil
}

// readJWKS reads a key set from a file or an http(s) URL.
func readJWKS(ctx context.Context, src string) ([]byte, error) {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		f, err := os.Open(src)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, maxInspectInput))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxInspectInput))
}

// writeTokenTree prints n and its embedded tokens; it reports whether a
// signature check or an embedded token failed.
func writeTokenTree(w io.Writer, n *unwrap.Node, now time.Time, indent string, root, last bool) bool {
	head, child := "", indent
	if !root {
		if last {
			head, child = indent+"└─ ", indent+"   "
		} else {
			head, child = indent+"├─ ", indent+"│  "
		}
	}
	title := "token"
	if n.Name != "" {
		title = n.Name
	}
	if n.Err != nil {
		fmt.Fprintf(w, "%s%s  %d bytes  %s\n", head, title, n.Bytes, userText(n.Err))
		return true
	}
	fmt.Fprintf(w, "%s%s  %d bytes  alg=%s kid=%s typ=%s\n", head, title, n.Bytes, orDash(n.Alg), orDash(n.Kid), orDash(n.Typ))
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%s    %-9s %s\n", child, k, v)
		}
	}
	line("iss", n.Issuer)
	line("sub", n.Subject)
	line("client_id", n.ClientID)
	line("aud", strings.Join(n.Audience, " "))
	line("scope", strings.Join(n.Scopes, " "))
	line("jti", n.ID)
	if !n.Expiry.IsZero() {
		rel := "in " + n.Expiry.Sub(now).Round(time.Second).String()
		if !now.Before(n.Expiry) {
			rel = "EXPIRED " + now.Sub(n.Expiry).Round(time.Second).String() + " ago"
		}
		line("exp", n.Expiry.UTC().Format(time.RFC3339)+" ("+rel+")")
	} else {
		line("exp", "none")
	}
	if !n.IssuedAt.IsZero() {
		line("iat", n.IssuedAt.UTC().Format(time.RFC3339))
	}
	if !n.NotBefore.IsZero() {
		line("nbf", n.NotBefore.UTC().Format(time.RFC3339))
	}
	names := make([]string, 0, len(n.Claims))
	for k := range n.Claims {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		line(k, string(n.Claims[k]))
	}
	failed := false
	switch {
	case !n.Checked:
		line("signature", "not checked (no --jwks)")
	case n.Verified:
		line("signature", "verified")
	default:
		line("signature", "NOT VERIFIED: "+userText(n.VerifyErr))
		failed = true
	}
	if n.ClaimPath != nil {
		line("embedded", fmt.Sprintf("%s: %d token(s), %d bytes", strings.Join(n.ClaimPath, "."), len(n.Children), n.EmbeddedBytes))
	}
	for i, c := range n.Children {
		if writeTokenTree(w, c, now, child, false, i == len(n.Children)-1) {
			failed = true
		}
	}
	return failed
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// notAJWT explains a token that inspect cannot decode at all: an opaque
// token (Hydra's ory_at_..., a phantom token) or an encrypted one.
func notAJWT(token string) error {
	switch strings.Count(token, ".") {
	case 2:
		return nil
	case 4:
		return errors.New("an encrypted token (JWE, not a signed JWT): inspect cannot decode it")
	}
	if strings.HasPrefix(token, "eyJ") {
		return nil // a damaged JWT ({"...): Inspect says what is wrong
	}
	return errors.New("an opaque token (not a JWT): inspect cannot decode it; only its issuer can (token introspection, RFC 7662)")
}
