package unwrap

import (
	"time"
)

// Lifetimes (DESIGN.md, Precise rules, "Lifetime left", and Sidecar
// behaviour, step 5). Inner tokens live shorter than the outer token that
// carries them, and the tokens nested in them shorter still; a journey
// must not fail halfway:
//
//   - a token whose outer exp, inner exp or (when watched) nested exp is
//     closer than sidecar.min_remaining is refused with 401 "token expires
//     too soon: renew";
//   - a first hop (an outer token from a trust) with an exchange block
//     watches the nested tokens too: when any token of the chain is
//     expired or within min_remaining, it exchanges the outer token for a
//     fresh inner token, minted with its nested tokens along calls, so
//     the whole chain keeps working for the outer token's life;
//   - without an exchange block, an expired inner token is 401 "embedded
//     token expired: renew" (at every hop: a deep hop's service passes it
//     back to its caller, up to the client).

// descTooSoon is the description of a token refused by min_remaining.
const descTooSoon = "token expires too soon: renew"

// maxNestDepth bounds how deep nested tokens are read for their expiry;
// the catalog's call graph is acyclic and far shallower.
const maxNestDepth = 16

// tooSoon refuses an exp closer than min_remaining (nothing when it is
// zero, or exp is unknown).
func (v *Verifier) tooSoon(exp, now time.Time) *Failure {
	if v.minRemaining <= 0 || exp.IsZero() || exp.Sub(now) >= v.minRemaining {
		return nil
	}
	return renew(ReasonExpiresSoon, descTooSoon)
}

// watchNested reports whether the tokens nested in the inner token are
// read for their expiry: at a hop that can refresh them (exchange) or that
// must refuse them when they expire too soon (min_remaining).
func (v *Verifier) watchNested(exchange bool) bool {
	return exchange || v.minRemaining > 0
}

// chainExpiry returns the earliest exp of token and of every token nested
// in it (along the minter's claim), recursively. The inner token's
// signature covers the nested tokens, so their claims are read without
// verifying them again; the hops they are meant for verify them. A token
// that does not parse contributes nothing.
func (v *Verifier) chainExpiry(token string, depth int) time.Time {
	p := new(parsed)
	if parseToken(token, p) != nil {
		return time.Time{}
	}
	exp := p.claims.Expiry
	if depth >= maxNestDepth {
		return exp
	}
	obj, _, err := embeddedMap(p.members, v.minterClaim)
	if err != nil || obj == nil {
		return exp
	}
	nested, err := embeddedStrings(obj)
	if err != nil {
		return exp
	}
	for _, tok := range nested {
		if e := v.chainExpiry(tok, depth+1); !e.IsZero() && (exp.IsZero() || e.Before(exp)) {
			exp = e
		}
	}
	return exp
}

// chainState is what the lifetimes of an accepted inner token ask for.
type chainState int

const (
	chainFresh   chainState = iota // forward it
	chainRefresh                   // exchange the outer token for a fresh one
)

// checkChain judges the inner token ic (already verified, not expired)
// and the tokens nested in it. It returns the earliest exp of the chain
// that was considered (for the cache), and either a refusal, chainRefresh
// (with exchange) or chainFresh.
func (v *Verifier) checkChain(inner string, ic *Claims, exchange bool, now time.Time) (time.Time, chainState, *Failure) {
	exp := ic.Expiry
	nested := exp
	if v.watchNested(exchange) {
		if e := v.chainExpiry(inner, 0); !e.IsZero() && e.Before(exp) {
			nested = e
			exp = e
		}
	}
	if exchange {
		if !now.Add(v.minRemaining).Before(exp) {
			return exp, chainRefresh, nil
		}
		return exp, chainFresh, nil
	}
	if !now.Before(nested.Add(v.leeway)) {
		f := renew(ReasonNestedExpired, descInnerExpired)
		f.Inner = true
		return exp, chainFresh, f
	}
	if f := v.tooSoon(exp, now); f != nil {
		f.Inner = true
		return exp, chainFresh, f
	}
	return exp, chainFresh, nil
}

// cacheUntil is how long a result whose chain expires at exp may be
// served from the cache: until min_remaining before exp, so that the
// next request is judged (refreshed or refused) again.
func (v *Verifier) cacheUntil(r *Result, exp time.Time) {
	if !exp.IsZero() {
		r.Expiry = earliest(r.Expiry, exp)
	}
	r.Expiry = r.Expiry.Add(-v.minRemaining)
}

// stillValid reports whether a chain whose earliest exp is exp is still
// accepted everywhere (leeway included): what a first hop forwards when
// its refresh fails for a dependency.
func (v *Verifier) stillValid(exp, now time.Time) bool {
	return now.Before(exp.Add(v.leeway))
}
