package catalog

import (
	"slices"
	"strings"
	"time"
)

// checkLifetimes warns where tokens will expire before the outer tokens
// that carry them (DESIGN.md, Precise rules, "Lifetime left"): a JWKS trust
// that does not declare its token_lifetime (nothing can be compared), and
// an API whose tokens, or the tokens nested in them, live shorter than the
// longest token_lifetime of a trust. The warning names the first hops (the
// exposed APIs whose tokens carry it) and what to do there.
func checkLifetimes(decls []*apiDecl, files []*decodedFile, cat *Catalog, d *diagnostics) {
	var longest *Trust
	for _, t := range cat.Trusts {
		if t.TokenLifetime > 0 && (longest == nil || t.TokenLifetime > longest.TokenLifetime) {
			longest = t
		}
	}
	for _, f := range files {
		for _, rt := range f.raw.Trusts {
			// Only on an otherwise valid configuration: beside errors it is noise.
			if rt.TokenLifetime == nil && rt.IntrospectionURL == nil && !d.list.HasErrors() {
				d.warnf(rt.DefRange, "Outer token lifetime unknown",
					"The trust %q does not declare token_lifetime, so check cannot tell whether inner tokens expire before its access tokens do. Set it to the issuer's access-token lifetime (Hydra: ttl.access_token, 1h by default).", rt.Name)
			}
		}
	}
	checkMinRemaining(files, cat, d)
	if longest == nil {
		return
	}
	for _, dc := range decls {
		if dc.api.Lifetime >= longest.TokenLifetime {
			continue
		}
		rng := dc.raw.LifetimeRange
		if dc.raw.Lifetime == nil {
			rng = dc.raw.DefRange
		}
		hops := firstHops(cat, dc.api.Name)
		d.warnf(rng, "Lifetime shorter than the outer token",
			"The API %q gets tokens for %s, but the trust %q issues access tokens for %s: after %s the client gets 401 \"embedded token expired: renew\" at %s. Do one of: configure an exchange block in the sidecar of %s (it exchanges the outer token for fresh tokens, nested ones included, when one expires); set min_remaining there and have clients renew; or align the lifetimes (lifetime = %s, or a shorter token_lifetime at the issuer).",
			dc.api.Name, dc.api.Lifetime, longest.Name, longest.TokenLifetime, dc.api.Lifetime, dc.api.Name, strings.Join(hops, ", "), longest.TokenLifetime)
	}
}

// checkMinRemaining warns when the sidecar's min_remaining is not shorter
// than the shortest lifetime along its API's chain: every token would be
// refused as expiring too soon, or exchanged on every request.
func checkMinRemaining(files []*decodedFile, cat *Catalog, d *diagnostics) {
	sc := cat.Sidecar
	if sc == nil || sc.MinRemaining <= 0 || cat.API(sc.API) == nil {
		return
	}
	short := cat.ShortestLifetime(sc.API)
	if sc.MinRemaining < short {
		return
	}
	for _, f := range files {
		for _, rs := range f.raw.Sidecars {
			if rs.MinRemaining != nil {
				d.warnf(rs.MinRemRange, "min_remaining too long",
					"min_remaining is %s, but tokens along the calls of %q live %s at the shortest: every token would be refused as expiring too soon (or, with an exchange block, exchanged on every request). Make it shorter than %s.",
					sc.MinRemaining, sc.API, short, short)
			}
		}
	}
}

// firstHops returns the exposed APIs whose tokens are, or carry nested,
// the token of api, in catalog order: the sidecars that see the outer token.
func firstHops(cat *Catalog, api string) []string {
	var out []string
	for _, a := range cat.APIs {
		if a.Exposed && reaches(cat, a, api, map[string]bool{}) {
			out = append(out, quoteName(a.Name))
		}
	}
	if len(out) == 0 {
		return []string{"its callers"}
	}
	return out
}

func reaches(cat *Catalog, from *API, to string, seen map[string]bool) bool {
	if from.Name == to {
		return true
	}
	if seen[from.Name] {
		return false
	}
	seen[from.Name] = true
	return slices.ContainsFunc(from.Calls, func(c string) bool {
		a := cat.API(c)
		return a != nil && reaches(cat, a, to, seen)
	})
}

// ShortestLifetime returns the shortest lifetime among api and the APIs
// whose tokens are nested in its tokens (along calls): how long a freshly
// minted token of api keeps its whole chain valid.
func (c *Catalog) ShortestLifetime(api string) time.Duration {
	a := c.API(api)
	if a == nil {
		return 0
	}
	short := a.Lifetime
	for _, n := range a.Calls {
		if l := c.ShortestLifetime(n); l > 0 && l < short {
			short = l
		}
	}
	return short
}

func quoteName(s string) string { return `"` + s + `"` }
