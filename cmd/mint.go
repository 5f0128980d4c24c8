package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
)

const mintSynopsis = `mint --config PATH --sub S --client-id C [--scope "a b"] [--audience A]... [--claim k=v]...
       [--outer-key FILE --outer-issuer URL [--outer-lifetime 1h] [--outer-kid KID] [--outer-audience A]...]`

// runMint prints the embedded map a subject gets, as JSON; with --outer-key
// and --outer-issuer, a whole outer access token carrying it (the
// development issuer).
func runMint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("mint", mintSynopsis, stderr)
	var configs, audience, claims, outerAud stringList
	fs.Var(&configs, "config", "configuration file or folder (repeatable)")
	sub := fs.String("sub", "", "subject (sub) of the tokens (required)")
	clientID := fs.String("client-id", "", "client_id of the tokens (required)")
	scope := fs.String("scope", "", "granted scopes, space-separated")
	fs.Var(&audience, "audience", "granted audience (repeatable; matters with mint_for = \"audience\")")
	fs.Var(&claims, "claim", "subject claim k=v (repeatable); v is JSON when it parses as JSON, else a string")
	outerKey := fs.String("outer-key", "", "PKCS#8 PEM key of the development issuer: print a whole outer token")
	outerIssuer := fs.String("outer-issuer", "", "iss of the outer token (with --outer-key)")
	outerLifetime := fs.Duration("outer-lifetime", mint.DefaultOuterLifetime, "lifetime of the outer token; bounds every inner token")
	outerKID := fs.String("outer-kid", "", "kid of the outer token (default: the key file's name without .key.pem)")
	fs.Var(&outerAud, "outer-audience", "aud of the outer token (repeatable; default: the audiences of the APIs it carries tokens for)")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	hint := "run 'embedtoken mint --help'"
	switch {
	case *sub == "":
		return &usageError{msg: "--sub is required", hint: hint}
	case *clientID == "":
		return &usageError{msg: "--client-id is required", hint: hint}
	case (*outerKey == "") != (*outerIssuer == ""):
		return &usageError{msg: "--outer-key and --outer-issuer go together", hint: hint}
	case *outerLifetime <= 0:
		return &usageError{msg: "--outer-lifetime must be positive", hint: hint}
	}
	subjectClaims, err := parseClaimFlags(claims)
	if err != nil {
		return err
	}
	cat, err := loadCatalog(configs, catalog.KeysRequire, 0, stderr)
	if err != nil {
		return err
	}
	for k := range subjectClaims {
		if mint.Reserved(k, cat.Minter.Claim) {
			return &usageError{msg: fmt.Sprintf("--claim %s: a reserved claim name", k),
				hint: "the minter and the issuer set iss, sub, aud, exp, iat, jti, client_id, scope, act and the embedded map themselves"}
		}
	}
	m, err := mint.New(cat, nil)
	if err != nil {
		return &configError{msg: err.Error()}
	}
	s := mint.Subject{
		Sub:      *sub,
		ClientID: *clientID,
		Scopes:   strings.Fields(*scope),
		Audience: audience,
		Claims:   subjectClaims,
		Exp:      time.Now().Add(*outerLifetime),
	}
	res, err := m.Mint(ctx, s)
	if err != nil {
		if mint.Denied(err) {
			return &usageError{msg: err.Error()}
		}
		return err
	}
	if res.OverBudget {
		fmt.Fprintf(stderr, "warning: the embedded map adds %d bytes, over max_embedded_bytes (%d)\n",
			res.EmbeddedBytes, cat.Minter.MaxEmbeddedBytes)
	}
	if len(res.Tokens) == 0 {
		fmt.Fprintln(stderr, noTokenHint(cat, s.Scopes, audience))
	}
	if *outerKey == "" {
		_, err = fmt.Fprintf(stdout, "%s\n", res.MapJSON())
		return err
	}
	// RFC 9068 requires aud: by default, the resource servers the token
	// carries inner tokens for.
	if len(outerAud) == 0 {
		for name := range res.Tokens {
			outerAud = append(outerAud, cat.API(name).Audience)
		}
		sort.Strings(outerAud)
		if len(outerAud) == 0 {
			fmt.Fprintln(stderr, "warning: no API was granted, so the outer token has no aud; pass --outer-audience")
		}
	}
	dev, err := mint.LoadDevIssuer(*outerKey, mint.DevIssuerOptions{
		Issuer: *outerIssuer, KeyID: *outerKID, Audience: outerAud, Lifetime: *outerLifetime,
	})
	if err != nil {
		return &usageError{msg: err.Error(), hint: "--outer-key is a PKCS#8 PEM file, as keygen writes"}
	}
	tok, err := dev.Sign(s, res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// parseClaimFlags turns k=v flags into subject claims: v is taken as JSON
// when it is valid JSON (numbers, true, objects...), else as a string.
func parseClaimFlags(flags []string) (map[string]any, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(flags))
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, &usageError{msg: fmt.Sprintf("--claim %q: want k=v", k), hint: "for example --claim tenant=acme or --claim 'roles=[\"a\"]'"}
		}
		if json.Valid([]byte(v)) {
			out[k] = json.RawMessage(v)
		} else {
			out[k] = v
		}
	}
	return out, nil
}
