package unwrap

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// verifyFromTrust verifies an outer token of the JWKS trust tv and its
// inner token for this API.
func (v *Verifier) verifyFromTrust(ctx context.Context, token string, p *parsed, tv *trustVerifier, now time.Time) (*Result, *Failure) {
	if f := v.verifyTrust(ctx, p, tv, now); f != nil {
		return nil, f
	}
	obj, _, err := embeddedMap(p.members, tv.claim)
	if err != nil {
		return nil, invalid(ReasonEmbeddedType, err)
	}
	inner, found := "", false
	if obj != nil {
		if inner, found, err = innerToken(obj, v.api.Name); err != nil {
			return nil, invalid(ReasonEmbeddedType, err)
		}
	}
	if !v.api.Exposed {
		return nil, insufficient(ReasonNotExposed, descNotExposed, v.api.Scopes)
	}
	if obj == nil && v.exchanger == nil && p.claims.covers(v.api.Scopes) {
		return nil, v.noEmbeddedMap(tv.t.Name, tv.claim, p.members)
	}
	return v.innerFrom(ctx, token, &p.claims, inner, found, tv.t.Name, now)
}

// innerAt reads this API's inner token from the embedded map at path,
// given the payload's top-level members; the other APIs' tokens are only
// type-checked.
func innerAt(top []rawMember, path []string, api string) (string, bool, error) {
	obj, _, err := embeddedMap(top, path)
	if err != nil || obj == nil {
		return "", false, err
	}
	return innerToken(obj, api)
}

// verifyTrust verifies an outer token from a JWKS trust issuer; the embedded
// map is the caller's to read.
func (v *Verifier) verifyTrust(ctx context.Context, p *parsed, tv *trustVerifier, now time.Time) *Failure {
	alg := jose.SignatureAlgorithm(p.header.Alg)
	if !slices.Contains(tv.t.Algorithms, alg) {
		return invalid(ReasonAlgNotAllowed, differs("alg", p.header.Alg, true, algNames(tv.t.Algorithms)))
	}
	if !slices.Contains(tv.typ, p.header.normTyp()) {
		return invalid(ReasonTyp, differs("typ", p.header.Typ, p.header.HasTyp, tv.typ))
	}
	if f := v.checkSignature(ctx, p, tv.keys, alg); f != nil {
		return f
	}
	c := &p.claims
	if c.Issuer != tv.t.Issuer {
		return invalid(ReasonUnknownIssuer, nil)
	}
	c.Issuer = tv.t.Issuer // the configured string: a cached result keeps no copy
	if f := checkTimes(c, now, v.leeway, false); f != nil {
		return f
	}
	if c.Subject == "" || c.ID == "" || c.ClientID == "" || !c.HasScopeClaim {
		return invalid(ReasonMissingClaim, missingClaims(c))
	}
	if len(tv.t.Audience) > 0 && !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(tv.t.Audience, a) }) {
		return invalid(ReasonAudience, audDiffers(c.Audience, tv.t.Audience))
	}
	return nil
}

// checkMinter verifies a token the minter signed: allowed alg, typ at+jwt,
// a key from the minter's key set, iss, exp, nbf, iat, jti, sub, client_id,
// and one audience.
func (v *Verifier) checkMinter(ctx context.Context, p *parsed, now time.Time) *Failure {
	alg := jose.SignatureAlgorithm(p.header.Alg)
	if !slices.Contains(v.minterAlgs, alg) {
		return invalid(ReasonAlgNotAllowed, differs("alg", p.header.Alg, true, algNames(v.minterAlgs)))
	}
	if p.header.normTyp() != typAccessToken {
		return invalid(ReasonTyp, differs("typ", p.header.Typ, p.header.HasTyp, []string{typAccessToken}))
	}
	if f := v.checkSignature(ctx, p, v.minter, alg); f != nil {
		return f
	}
	c := &p.claims
	if c.Issuer != v.minterIssuer {
		return invalid(ReasonUnknownIssuer, nil)
	}
	c.Issuer = v.minterIssuer
	if f := checkTimes(c, now, v.leeway, true); f != nil {
		return f
	}
	if c.Subject == "" || c.ID == "" || c.ClientID == "" {
		return invalid(ReasonMissingClaim, errors.New("a minter token needs sub, jti and client_id"))
	}
	if len(c.Audience) != 1 {
		return invalid(ReasonAudience, errors.New("a minter token has exactly one audience"))
	}
	return nil
}

// verifyMinterOuter handles a minter token presented to this sidecar: this
// API's own token (accepted as it is, unless the API is not exposed), or a
// calling API's token holding ours in its embedded map.
func (v *Verifier) verifyMinterOuter(ctx context.Context, token string, p *parsed, now time.Time) (*Result, *Failure) {
	if f := v.checkMinter(ctx, p, now); f != nil {
		return nil, f
	}
	c := &p.claims
	aud := c.Audience[0]
	if aud == v.api.Audience {
		if !v.api.Exposed {
			return nil, insufficient(ReasonNotExposed, descNotExposed, v.api.Scopes)
		}
		if f := v.tooSoon(c.Expiry, now); f != nil {
			return nil, f
		}
		r := v.result(token, c, c, SourceDirect)
		v.cacheUntil(r, time.Time{})
		return r, nil
	}
	if !v.callers[aud] {
		return nil, invalid(ReasonNotCaller, nil)
	}
	inner, found, err := innerAt(p.members, v.minterClaim, v.api.Name)
	if err != nil {
		return nil, invalid(ReasonEmbeddedType, err)
	}
	return v.innerFrom(ctx, token, c, inner, found, SourceMinter, now)
}

// innerFrom verifies the inner token for this API taken out of the outer
// token's embedded map (found is false when the map has none; DESIGN.md,
// Sidecar behaviour, steps 3 and 5). A missing (but covered) or expired
// inner token is exchanged when an Exchanger is configured, except in a
// calling API's minter token: the exchange endpoint refuses minter tokens
// as subject tokens.
func (v *Verifier) innerFrom(ctx context.Context, outerToken string, outer *Claims, inner string, found bool, source string, now time.Time) (*Result, *Failure) {
	exchange := v.exchanger != nil && source != SourceMinter
	if f := v.tooSoon(outer.Expiry, now); f != nil {
		return nil, f // an exchanged token would expire with the outer one
	}
	if !found {
		if !outer.covers(v.api.Scopes) {
			return nil, insufficient(ReasonNoScope, descNoScope, v.api.Scopes)
		}
		if exchange {
			return v.exchange(ctx, outerToken, outer, source, ReasonPredatesAPI)
		}
		return nil, renew(ReasonPredatesAPI, descPredates)
	}
	ic, f := v.checkInner(ctx, inner, outer, now)
	if f != nil && f.Reason == ReasonExpired {
		if exchange {
			return v.exchange(ctx, outerToken, outer, source, ReasonInnerExpired)
		}
		f = renew(ReasonInnerExpired, descInnerExpired)
	}
	if f != nil {
		f.Inner = true
		return nil, f
	}
	exp, state, f := v.checkChain(inner, &ic, exchange, now)
	switch {
	case f != nil:
		return nil, f
	case state == chainRefresh:
		r, xf := v.exchange(ctx, outerToken, outer, source, ReasonInnerExpired)
		if xf == nil || xf.Status < http.StatusInternalServerError || !v.stillValid(exp, now) {
			return r, xf
		}
		// The endpoint is down (or refuses this sidecar: logged, counted,
		// not ready), but nothing has expired yet: forward the embedded
		// token, uncached (the next request tries again).
		r = v.result(inner, outer, &ic, source)
		r.Expiry = now
		return r, nil
	}
	r := v.result(inner, outer, &ic, source)
	v.cacheUntil(r, exp)
	return r, nil
}

// resultBlock is a Result and its claims in one allocation: what the
// verified-token cache keeps per token.
type resultBlock struct {
	r            Result
	outer, inner Claims
}

// bearerPrefix starts the Authorization header forwarded upstream.
const bearerPrefix = "Bearer "

// result builds a Result valid until the earliest exp involved, and no
// longer than an introspection answer may be used. It keeps copies of the
// claims without Embedded and Extra, so that a cached result holds the
// inner token and the registered claims only: no other API's token, no
// decoded payload.
func (v *Verifier) result(inner string, outer, ic *Claims, source string) *Result {
	exp := earliest(outer.Expiry, ic.Expiry)
	if !outer.Until.IsZero() {
		exp = earliest(exp, outer.Until)
	}
	b := &resultBlock{}
	b.inner = *ic
	b.inner.Embedded, b.inner.Extra = nil, nil
	b.r = Result{authz: bearerPrefix + inner, InnerClaims: &b.inner, Source: source, Expiry: exp}
	b.r.Inner = b.r.authz[len(bearerPrefix):]
	if outer == ic {
		b.r.Outer = &b.inner
	} else {
		b.outer = *outer
		b.outer.Embedded, b.outer.Extra = nil, nil
		b.r.Outer = &b.outer
	}
	return &b.r
}

// checkInner verifies an inner token for this API against outer and
// returns its claims (sharing outer's strings where they are equal).
func (v *Verifier) checkInner(ctx context.Context, inner string, outer *Claims, now time.Time) (Claims, *Failure) {
	if len(inner) > v.maxTokenBytes {
		return Claims{}, invalid(ReasonTooLarge, nil)
	}
	p := new(parsed)
	p.pooledPayloads()
	defer p.release()
	if f := parseToken(inner, p); f != nil {
		return Claims{}, f
	}
	if f := v.checkMinter(ctx, p, now); f != nil {
		return Claims{}, f
	}
	ic := p.claims
	if ic.Audience[0] != v.api.Audience {
		return Claims{}, invalid(ReasonAudience, audDiffers(ic.Audience, v.innerAud))
	}
	if ic.Subject != outer.Subject || ic.ClientID != outer.ClientID {
		return Claims{}, invalid(ReasonSubjectMismatch, nil)
	}
	ic.Subject, ic.ClientID, ic.Audience = outer.Subject, outer.ClientID, v.innerAud
	return ic, nil
}

func renew(r Reason, desc string) *Failure {
	f := invalid(r, nil)
	f.Description = desc
	return f
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// checkTimes checks exp (required), nbf and, for minter tokens, iat
// (required, not in the future), with leeway.
func checkTimes(c *Claims, now time.Time, leeway time.Duration, minter bool) *Failure {
	if c.Expiry.IsZero() {
		return invalid(ReasonMissingClaim, errors.New("exp is required"))
	}
	if !now.Before(c.Expiry.Add(leeway)) {
		return invalid(ReasonExpired, nil)
	}
	if !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore) {
		return invalid(ReasonNotYetValid, nil)
	}
	if minter {
		if c.IssuedAt.IsZero() {
			return invalid(ReasonMissingClaim, errors.New("iat is required"))
		}
		if now.Add(leeway).Before(c.IssuedAt) {
			return invalid(ReasonIssuedInFuture, nil)
		}
	}
	return nil
}
