package main

import (
	"crypto"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The second, independent set-up of the proxy suite (issue 14), selected
// with -setup second: wrk -t1 -c16 on cpu 0, every server on cpu 1, 6 s
// runs, a generated catalog of K = 5 exposed APIs (EdDSA inner tokens,
// 15-minute lifetimes) of which the sidecar fronts one, an RS256-2048
// outer token with typ JWT from a trust with a jwks_url, and a cold pool of
// 5000 distinct tokens against cache_entries = 1000. Flags given
// explicitly still win over these values.
const (
	setupFirst  = "first"
	setupSecond = "second"

	secondK        = 5
	secondLifetime = 15 * time.Minute
)

// applySetup sets the defaults of the chosen set-up on every flag of fs
// that was not given on the command line.
func (c *config) applySetup(fs *flag.FlagSet) error {
	switch c.setup {
	case setupFirst:
		return nil
	case setupSecond:
	default:
		return fmt.Errorf("-setup %q: want %q or %q", c.setup, setupFirst, setupSecond)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, v := range map[string]string{
		"conns": "16", "server-cpu": "1", "load-cpu": "0", "duration": "6s",
		"pool": "5000", "cache-entries": "1000",
	} {
		if !given[name] {
			if err := fs.Set(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// proxyCatalog is what the proxy suite's sidecar runs on: the catalog
// source, the scopes of every outer token, the API the sidecar fronts and
// the lifetime of the outer tokens.
type proxyCatalog struct {
	src           string
	scopes        []string
	api           string
	outerLifetime time.Duration
	typJWT        bool   // re-sign outer tokens with typ JWT instead of at+jwt
	trustExtra    string // more attributes of the trust block
}

func (c *config) proxyCatalog() (proxyCatalog, error) {
	if c.setup != setupSecond {
		src, err := shippedCatalog(c.repo)
		if err != nil {
			return proxyCatalog{}, err
		}
		return proxyCatalog{src: longLived(src), scopes: shippedScopes, api: "orders", outerLifetime: 3 * time.Hour}, nil
	}
	src, scopes := generatedCatalog(secondK)
	const anchor = "  active_key         = \"minter-1\"\n"
	if !strings.Contains(src, anchor) {
		return proxyCatalog{}, errors.New("generated catalog: no active_key line to put default_lifetime after")
	}
	src = strings.Replace(src, anchor, anchor+fmt.Sprintf("  default_lifetime   = %q\n", secondLifetime.String()), 1)
	return proxyCatalog{src: src, scopes: scopes, api: "api00", outerLifetime: secondLifetime, typJWT: true,
		trustExtra: fmt.Sprintf("  typ            = [\"JWT\"]\n  token_lifetime = %q\n", secondLifetime.String())}, nil
}

// resignTypJWT signs the payload of tok again with key, header typ JWT and
// the same kid: the shape of an access token from an issuer that does not
// follow RFC 9068's at+jwt.
func resignTypJWT(tok string, key crypto.Signer, kid string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errors.New("resign: not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("resign: payload: %w", err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
