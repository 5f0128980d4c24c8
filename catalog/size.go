package catalog

import (
	"crypto/rsa"
	"encoding/base64"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// The size model's assumptions about what a subject brings. Real values
// longer than these make real tokens larger than the report.
const (
	// AssumedSubjectBytes is the assumed length of sub (a UUID is 36).
	AssumedSubjectBytes = 64
	// AssumedClientIDBytes is the assumed length of client_id.
	AssumedClientIDBytes = 64
	// AssumedClaimBytes is the assumed length of a copied claim value,
	// taken as a JSON string of that many characters.
	AssumedClaimBytes = 64
	// AssumedRSABits is the RSA modulus assumed when no key is loaded.
	AssumedRSABits = 2048
	// jtiBytes is the length of a jti: 16 random bytes, base64url.
	jtiBytes = 22
	// numericDateBytes is the length of exp and iat until 2286.
	numericDateBytes = 10
)

// SizeReport is the worst-case size of the tokens a catalog mints,
// computed from the catalog alone: every scope granted, every declared
// claim present at AssumedClaimBytes, nested tokens included.
type SizeReport struct {
	// APIs has one entry per API, sorted by name.
	APIs []APISize
	// EmbeddedBytes is what the embedded map adds to an outer token, in
	// base64url bytes: `,"<claim>":{"api":"<jws>",...}` encoded.
	EmbeddedBytes int
	// OuterBytes is OuterBaseBytes plus EmbeddedBytes.
	OuterBytes int
	// Budget is max_embedded_bytes.
	Budget int
	// Algorithm and KeyID are those assumed for signatures.
	Algorithm string
	KeyID     string
}

// OverBudget reports whether the embedded map may exceed the budget.
func (r SizeReport) OverBudget() bool { return r.EmbeddedBytes > r.Budget }

// APISize is the worst-case size of one API's inner token.
type APISize struct {
	Name string
	// Bytes is the compact JWS length, nested tokens included.
	Bytes int
	// Exposed APIs count toward EmbeddedBytes.
	Exposed bool
}

// Sizes computes the size report.
func (c *Catalog) Sizes() SizeReport {
	alg, kid, sigBytes := c.signatureShape()
	r := SizeReport{Budget: c.Minter.MaxEmbeddedBytes, Algorithm: string(alg), KeyID: kid}
	header := b64len(len(`{"alg":"` + string(alg) + `","kid":"` + kid + `","typ":"at+jwt"}`))
	memo := map[string]int{}
	var size func(a *API) int
	size = func(a *API) int {
		if n, ok := memo[a.Name]; ok {
			return n
		}
		p := len(`{"iss":"` + c.Minter.Issuer + `","sub":"","aud":"` + a.Audience + `","exp":,"iat":,"jti":"","client_id":""}`)
		p += AssumedSubjectBytes + AssumedClientIDBytes + 2*numericDateBytes + jtiBytes
		if len(a.Scopes) > 0 {
			p += len(`,"scope":"` + strings.Join(a.Scopes, " ") + `"`)
		}
		for _, cl := range a.Claims {
			p += len(`,"`+cl+`":""`) + AssumedClaimBytes
		}
		if len(a.Calls) > 0 {
			var nested []string
			for _, callee := range a.Calls {
				if ca := c.API(callee); ca != nil {
					nested = append(nested, callee)
				}
			}
			p += mapBytes(c.Minter.Claim, nested, func(name string) int { return size(c.API(name)) })
		}
		n := header + 1 + b64len(p) + 1 + b64len(sigBytes)
		memo[a.Name] = n
		return n
	}
	var exposed []string
	for _, a := range c.APIs {
		r.APIs = append(r.APIs, APISize{Name: a.Name, Bytes: size(a), Exposed: a.Exposed})
		if a.Exposed {
			exposed = append(exposed, a.Name)
		}
	}
	raw := mapBytes(c.Minter.Claim, exposed, func(name string) int { return memo[name] })
	// Base64url grows the JSON by 4/3; a partial group still costs its bytes.
	r.EmbeddedBytes = raw * 4 / 3
	if raw*4%3 != 0 {
		r.EmbeddedBytes++
	}
	r.OuterBytes = c.Minter.OuterBaseBytes + r.EmbeddedBytes
	return r
}

// mapBytes is the JSON length of `,"<claim>":{"a":"<jws>",...}`.
func mapBytes(claim string, names []string, size func(string) int) int {
	n := len(`,"` + claim + `":{}`)
	for i, name := range names {
		if i > 0 {
			n++ // comma
		}
		n += len(`"`+name+`":""`) + size(name)
	}
	return n
}

// signatureShape returns the algorithm, kid and raw signature length of the
// active key, or assumptions when no key is loaded.
func (c *Catalog) signatureShape() (jose.SignatureAlgorithm, string, int) {
	m := c.Minter
	alg := jose.EdDSA
	if len(m.Algorithms) > 0 {
		alg = m.Algorithms[0]
	}
	kid := m.ActiveKey
	var rsaBits int
	if k := m.Key(m.ActiveKey); k != nil {
		alg = k.Algorithm
		if pk, ok := k.Private.(*rsa.PrivateKey); ok {
			rsaBits = pk.N.BitLen()
		}
	}
	switch alg {
	case jose.EdDSA, jose.ES256:
		return alg, kid, 64
	case jose.ES384:
		return alg, kid, 96
	case jose.ES512:
		return alg, kid, 132
	default:
		if rsaBits == 0 {
			rsaBits = AssumedRSABits
		}
		return alg, kid, (rsaBits + 7) / 8
	}
}

func b64len(n int) int { return base64.RawURLEncoding.EncodedLen(n) }
