package unwrap

import (
	"crypto/sha256"
	"strings"
)

// tokenID is what the caches index a token by: see tokenKey.
type tokenID [sha256.Size]byte

// cacheKey is a token's cache key (tokenKey) together with the SHA-256 of
// the token up to its last dot, which tokenKey computes on the way: for a
// JWS that is the signing input, and a SHA-256 signature (RS256, PS256,
// ES256) over the same token is checked against that digest instead of
// hashing the ~5 KB token a second time (parsed.siSum).
type cacheKey struct {
	id tokenID
	// si is SHA-256(token[:siLen]) when hasSI: the token has a dot, and
	// siLen is the index of its last one.
	si    [sha256.Size]byte
	siLen int
	hasSI bool
}

// Domain tags of tokenKey's two encodings.
const (
	keyTagDot   = 'J' // the token has a dot
	keyTagNoDot = 'O' // it has none (an opaque token)
)

// tokenKey returns the cache key of token. Split at its last dot into s
// and g (for a JWS: the signing input and the base64url signature),
//
//	id = SHA-256('J' || SHA-256(s) || g)
//
// and, for a token without a dot, id = SHA-256('O' || SHA-256(token)).
//
// The id is collision resistant over the whole token, as a SHA-256 of the
// token itself was: the encoding tag || SHA-256(s) || g is injective up to
// SHA-256 collisions. The tag tells the two forms apart (so "t" and "t."
// differ), the inner digest has a fixed length (so g is exactly what
// follows it, and moving the last dot changes s), and equal encodings with
// the same tag have equal SHA-256(s), hence equal s unless SHA-256
// collides, and equal g: the same token. Two different tokens with the
// same id therefore need a SHA-256 collision, either of the outer hash or
// of the inner one; any change to the header or payload (in s) or to the
// signature (g) changes the id (TestTokenKeyWholeToken, FuzzTokenKey).
func tokenKey(token string) cacheKey {
	var k cacheKey
	var buf [1 + sha256.Size + 512]byte // the tag, the inner digest and a signature of up to 4096 bits
	in := buf[:0]
	if i := strings.LastIndexByte(token, '.'); i >= 0 {
		k.si, k.siLen, k.hasSI = sha256.Sum256(bytesOf(token[:i])), i, true
		in = append(append(append(in, keyTagDot), k.si[:]...), token[i+1:]...)
	} else {
		d := sha256.Sum256(bytesOf(token))
		in = append(append(in, keyTagNoDot), d[:]...)
	}
	k.id = sha256.Sum256(in)
	return k
}

// lendSum copies k's digest of p's signing input into p, if k holds one
// for it. p must be parsed from the token k was computed from:
// parseToken's signingInput ends at the token's last dot, so an equal
// length means the same bytes.
func (k *cacheKey) lendSum(p *parsed) {
	if k != nil && k.hasSI && k.siLen == len(p.signingInput) {
		p.siSum, p.hasSum = k.si, true
	}
}
