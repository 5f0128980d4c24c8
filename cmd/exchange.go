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
	// claimPaths maps the issuer of each JWKS trust to its embedded map's
	// claim path: the members beside the map (Hydra: ext) are the subject's
	// claims too.
	claimPaths map[string][]string
}

var _ mint.SubjectVerifier = (*subjectVerifier)(nil)

// newSubjectVerifier builds the verifier of cat's trusts, with the RFC 7662
// client of its introspection trusts when it declares any. It starts
// nothing.
func newSubjectVerifier(cat *catalog.Catalog, log *zap.Logger, reg prometheus.Registerer) (*subjectVerifier, error) {
	opts := &unwrap.Options{Logger: log.Named("exchange"), Registerer: reg}
	var err error
	if opts.Introspector, err = unwrap.NewIntrospector(cat, opts); err != nil {
		return nil, fmt.Errorf("subject tokens: %w", err)
	}
	v, err := unwrap.NewVerifier(cat, opts)
	if err != nil {
		return nil, fmt.Errorf("subject tokens: %w", err)
	}
	s := &subjectVerifier{v: v, minterIss: cat.Minter.Issuer, claimPaths: map[string][]string{}}
	for _, t := range cat.Trusts {
		if t.Introspection() {
			continue
		}
		if _, dup := s.claimPaths[t.Issuer]; dup {
			continue // the verifier uses the first trust of an issuer too
		}
		path := t.Claim
		if len(path) == 0 {
			path = []string{cat.Minter.Claim}
		}
		s.claimPaths[t.Issuer] = path
	}
	return s, nil
}

// Start loads the trusts' key sets and keeps them fresh until Close.
func (s *subjectVerifier) Start() { s.v.Start(context.Background()) }

// Ready reports whether every key set was loaded once.
func (s *subjectVerifier) Ready() bool { return s.v.Ready() }

// Close stops the key set refreshers. Exchanges in flight finish with the
// keys already loaded.
func (s *subjectVerifier) Close() { s.v.Close() }

// VerifySubject implements mint.SubjectVerifier.
func (s *subjectVerifier) VerifySubject(ctx context.Context, token string) (*mint.SubjectToken, error) {
	c, err := s.v.VerifyOuter(ctx, token)
	if err != nil {
		return nil, s.refused(token, err)
	}
	st := &mint.SubjectToken{
		Subject: mint.Subject{Sub: c.Subject, ClientID: c.ClientID, Scopes: c.Scopes, Audience: c.Audience, Exp: c.Expiry},
		Issuer:  c.Issuer,
		ID:      c.ID,
	}
	if payload, ok := jwsPayload(token); ok {
		// Verified above: the payload is one strict JSON object.
		if st.Claims, st.Act, err = subjectClaims(payload, s.claimPaths[c.Issuer]); err != nil {
			return nil, fmt.Errorf("%w: %w", mint.ErrSubjectToken, err)
		}
	}
	// An introspected token brings no claims to copy nor act: unwrap.Claims
	// holds only the registered ones.
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

// subjectClaims returns the claims an API may copy from a verified JWT
// subject token — its top-level members, overlaid with those of the object
// that holds the embedded map when the claim path is nested (Hydra puts the
// hook's claims in ext, beside ext.embedded_tokens) — and its act claim.
// mint copies only the names an API declares, never a registered one.
func subjectClaims(payload []byte, claimPath []string) (map[string]any, json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil {
		return nil, nil, errors.New("payload is not a JSON object")
	}
	claims := make(map[string]any, len(top))
	for k, v := range top {
		claims[k] = v
	}
	obj := top
	for i := 0; i+1 < len(claimPath) && obj != nil; i++ {
		var next map[string]json.RawMessage
		if raw, ok := obj[claimPath[i]]; !ok || json.Unmarshal(raw, &next) != nil {
			next = nil
		}
		obj = next
	}
	if len(claimPath) > 1 {
		for k, v := range obj {
			claims[k] = v
		}
	}
	return claims, top["act"], nil
}
