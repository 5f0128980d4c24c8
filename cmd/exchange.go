package cmd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
	"github.com/embedtoken/embedtoken/unwrap"
)

// subjectVerifier verifies the subject tokens of the hook's token exchange
// endpoint with the sidecar's verifier (unwrap.Verifier.VerifyOuter: a trust
// issuer's access token, a JWT or an introspected opaque token; never a
// minter token). It is the mint.SubjectVerifier that cmd wires in, so that
// mint and unwrap never import each other. Build it with
// newSubjectVerifier, Start it, and Close it when its configuration is
// replaced.
type subjectVerifier struct {
	v         *unwrap.Verifier
	minterIss string
}

var _ mint.SubjectVerifier = (*subjectVerifier)(nil)

// newSubjectVerifier builds the verifier of cat's trusts, with the RFC 7662
// client of its introspection trusts when it declares any. It verifies
// outer tokens only, so it loads no key set for the minter's own JWKS. It
// starts nothing.
func newSubjectVerifier(cat *catalog.Catalog, log *zap.Logger, reg prometheus.Registerer, sources *unwrap.KeySources) (*subjectVerifier, error) {
	opts := &unwrap.Options{Logger: log.Named("exchange"), Registerer: reg, OuterOnly: true, KeySources: sources}
	var err error
	if opts.Introspector, err = unwrap.NewIntrospector(cat, opts); err != nil {
		return nil, fmt.Errorf("subject tokens: %w", err)
	}
	v, err := unwrap.NewVerifier(cat, opts)
	if err != nil {
		return nil, fmt.Errorf("subject tokens: %w", err)
	}
	return &subjectVerifier{v: v, minterIss: cat.Minter.Issuer}, nil
}

// Start loads the trusts' key sets and keeps them fresh until Close.
func (s *subjectVerifier) Start() { s.v.Start(context.Background()) }

// Ready reports whether every key set was loaded once.
func (s *subjectVerifier) Ready() bool { return s.v.Ready() }

// Close stops the key set refreshers. Exchanges in flight finish with the
// keys already loaded.
func (s *subjectVerifier) Close() { s.v.Close() }

// VerifySubject implements mint.SubjectVerifier. The claims an API may
// copy, and the prior act, come from the verified claims' Extra: a JWT's
// top-level claims and an introspection answer's alike, with the members
// beside the embedded map (Hydra's ext) added. mint copies only the names
// an API declares, never a registered one.
func (s *subjectVerifier) VerifySubject(ctx context.Context, token string) (*mint.SubjectToken, error) {
	c, err := s.v.VerifyOuter(ctx, token)
	if err != nil {
		return nil, s.refused(token, err)
	}
	st := &mint.SubjectToken{
		Subject: mint.Subject{Sub: c.Subject, ClientID: c.ClientID, Scopes: c.Scopes, Audience: c.Audience, Exp: c.Expiry},
		Issuer:  c.Issuer,
		ID:      c.ID,
		Act:     c.Extra["act"],
	}
	if len(c.Extra) > 0 {
		st.Claims = make(map[string]any, len(c.Extra))
		for k, v := range c.Extra {
			st.Claims[k] = v
		}
	}
	return st, nil
}

// refused maps the verifier's failure to mint's errors: a dependency
// failure is ErrSubjectUnavailable (503), anything else a refused token.
func (s *subjectVerifier) refused(token string, err error) error {
	var f *unwrap.Failure
	switch {
	case errors.Is(err, unwrap.ErrUnavailable):
		return fmt.Errorf("%w: %w", mint.ErrSubjectUnavailable, err)
	case !errors.As(err, &f):
	case f.Reason == unwrap.ReasonExpired:
		return fmt.Errorf("%w: %w", mint.ErrSubjectExpired, err)
	case f.Reason == unwrap.ReasonUnknownIssuer && unverifiedIssuer(token) == s.minterIss:
		// Only to say why: the token was refused whatever its iss.
		return fmt.Errorf("%w: %w", mint.ErrSubjectMinterToken, err)
	}
	return fmt.Errorf("%w: %w", mint.ErrSubjectToken, err)
}

// jwsPayload returns the decoded payload of a compact JWS.
func jwsPayload(token string) ([]byte, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	return b, err == nil
}

// unverifiedIssuer reads iss from a JWS payload without verifying it, or "".
func unverifiedIssuer(token string) string {
	payload, ok := jwsPayload(token)
	if !ok {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	_ = json.Unmarshal(payload, &c)
	return c.Iss
}
