package unwrap

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// Details of refusals: what differed, for logs only (Failure.Err; the
// client sees the same generic answer). Values from the token are
// unverified and attacker-controlled: they pass through quoted, which
// bounds and sanitizes them.

// descNoEmbeddedMap answers an outer token without the embedded map at the
// trust's claim path: a configuration mismatch that renewing cannot fix.
const descNoEmbeddedMap = "the embedded token map was not found at the configured claim"

// maxNamesLogged bounds the claim names a detail lists.
const maxNamesLogged = 16

// errNoEmbeddedMap is the cause of ReasonNoEmbeddedMap.
var errNoEmbeddedMap = errors.New("no embedded token map")

// unknownIssuer says which issuer a token named and which are trusted.
func (v *Verifier) unknownIssuer(got string) error {
	want := make([]string, 0, len(v.trusts)+1)
	for _, tv := range v.trusts {
		want = append(want, tv.t.Issuer)
	}
	if v.introspector != nil {
		want = append(want, "(introspection trusts: opaque tokens)")
	}
	return fmt.Errorf("iss %s is neither the minter's %q nor a trust's: want one of %q", quoted(got), v.minterIssuer, want)
}

// differs says that a header or claim name had got (or was absent) where
// one of want was expected.
func differs(name, got string, present bool, want []string) error {
	g := "absent"
	if present {
		g = quoted(got)
	}
	return fmt.Errorf("%s %s, want one of %q", name, g, want)
}

// audDiffers says which audiences a token had and which were expected.
func audDiffers(got, want []string) error {
	q := make([]string, 0, min(len(got), 8))
	for i, a := range got {
		if i == 8 {
			q = append(q, "...")
			break
		}
		q = append(q, quoted(a))
	}
	return fmt.Errorf("aud [%s], want one of %q", strings.Join(q, " "), want)
}

func algNames(algs []jose.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}

// noEmbeddedMap refuses an outer token of trust without the embedded map at
// its claim path, and warns (rate-limited) with the path: the trust's claim
// does not match where the issuer puts the map, or the issuer does not call
// the hook. Telling the client to renew would not help.
func (v *Verifier) noEmbeddedMap(trust string, path []string, top []rawMember) *Failure {
	names := make([]string, 0, min(len(top), maxNamesLogged+1))
	for i, m := range top {
		if i == maxNamesLogged {
			names = append(names, "...")
			break
		}
		names = append(names, quoted(m.name()))
	}
	f := invalid(ReasonNoEmbeddedMap, fmt.Errorf("%w at claim %q of trust %s; its other top-level claims: [%s]",
		errNoEmbeddedMap, strings.Join(path, "."), trust, strings.Join(names, " ")))
	f.Description = descNoEmbeddedMap
	if v.mapWarn.allow(v.now()) {
		v.log.Warn("outer token without the embedded map: check the trust's claim against the issuer's tokens (and that the issuer calls the hook)",
			zap.String(fieldIssuer, trust), zap.String(fieldClaim, strings.Join(path, ".")), zap.String(fieldReason, string(ReasonNoEmbeddedMap)))
	}
	return f
}

// missingClaims names the claims that an outer access token lacks (RFC
// 8725 3.12: without them it is not an access token).
func missingClaims(c *Claims) error {
	var missing []string
	for _, m := range []struct {
		name string
		ok   bool
	}{{"sub", c.Subject != ""}, {"jti", c.ID != ""}, {"client_id", c.ClientID != ""}, {"scope or scp", c.HasScopeClaim}} {
		if !m.ok {
			missing = append(missing, m.name)
		}
	}
	return fmt.Errorf("an access token needs sub, jti, client_id and scope or scp; missing: %s", strings.Join(missing, ", "))
}

// withSource sets the Source of a refusal that has none.
func withSource(source string) func(*Result, *Failure) (*Result, *Failure) {
	return func(r *Result, f *Failure) (*Result, *Failure) {
		if f != nil && f.Source == "" {
			f.Source = source
		}
		return r, f
	}
}
