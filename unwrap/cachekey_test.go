package unwrap

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestTokenKeyWholeToken: once a token is cached, a token that differs in
// its header, payload or signature (or where its dots are) has another
// key and is verified, not served from the cache.
func TestTokenKeyWholeToken(t *testing.T) {
	e := newEnv(t, envOpts{})
	v := e.sc.verifier
	ctx := context.Background()
	tok := e.outer()
	if _, hit, err := v.verifyCached(ctx, tok); err != nil || hit {
		t.Fatalf("first verification: hit %v, %v", hit, err)
	}
	if _, hit, err := v.verifyCached(ctx, tok); err != nil || !hit {
		t.Fatalf("second verification: hit %v, %v", hit, err)
	}
	h, rest, _ := strings.Cut(tok, ".")
	pl, sig, _ := strings.Cut(rest, ".")
	// flip changes the base64url character at i of s into another valid one.
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	variants := map[string]string{
		"header first":      flip(h, 0) + "." + pl + "." + sig,
		"header last":       flip(h, len(h)-1) + "." + pl + "." + sig,
		"payload middle":    h + "." + flip(pl, len(pl)/2) + "." + sig,
		"payload last":      h + "." + flip(pl, len(pl)-1) + "." + sig,
		"signature first":   h + "." + pl + "." + flip(sig, 0),
		"signature last":    h + "." + pl + "." + flip(sig, len(sig)-1),
		"signature cut":     h + "." + pl + "." + sig[:len(sig)-1],
		"signature longer":  tok + "A",
		"dot moved":         h + "." + pl[:len(pl)-1] + "." + pl[len(pl)-1:] + sig,
		"dot appended":      tok + ".",
		"no signature":      h + "." + pl + ".",
		"signing input":     h + "." + pl,
		"payload swapped":   h + "." + sig + "." + pl,
		"header dropped":    pl + "." + sig,
		"whitespace before": " " + tok,
	}
	id := tokenKey(tok).id
	for name, x := range variants {
		if x == tok {
			t.Fatalf("%s: variant equals the token", name)
		}
		if tokenKey(x).id == id {
			t.Errorf("%s: same cache key", name)
		}
		r, hit, err := v.verifyCached(ctx, x)
		if hit || err == nil {
			t.Errorf("%s: hit %v, result %v, error %v", name, hit, r != nil, err)
		}
	}
}

// TestTokenKeyEncoding: the key's two forms and boundaries, and the
// signing-input digest it lends to signature checks.
func TestTokenKeyEncoding(t *testing.T) {
	distinct := []string{"", ".", "..", "t", "t.", ".t", "a.b", "a.b.", "a.b.c", "a.bc", "ab.c", "a.b.c.", "a..bc", "a.b..c",
		// "O" || SHA-256(x) against "J" || SHA-256(y) || "": the tags differ.
		"J", "O",
	}
	seen := map[tokenID]string{}
	for _, s := range distinct {
		k := tokenKey(s)
		if prev, dup := seen[k.id]; dup {
			t.Errorf("%q and %q have the same key", prev, s)
		}
		seen[k.id] = s
		i := strings.LastIndexByte(s, '.')
		if k.hasSI != (i >= 0) {
			t.Errorf("%q: hasSI %v", s, k.hasSI)
		}
		if i >= 0 {
			if want := sha256.Sum256([]byte(s[:i])); k.si != want || k.siLen != i {
				t.Errorf("%q: signing-input digest of the wrong text", s)
			}
			p := parsed{signingInput: s[:i]}
			if k.lendSum(&p); !p.hasSum || p.siSum != k.si {
				t.Errorf("%q: digest of its signing input not lent", s)
			}
		}
		p := parsed{signingInput: s + "x"}
		if k.lendSum(&p); p.hasSum {
			t.Errorf("%q: digest lent for a longer text", s)
		}
	}
	var nilKey *cacheKey
	p := parsed{}
	nilKey.lendSum(&p)
	(&cacheKey{}).lendSum(&p)
	if p.hasSum {
		t.Error("an empty key lends a digest")
	}
	// A signature longer than tokenKey's buffer is hashed whole.
	long := "a.b." + strings.Repeat("s", 2000)
	if tokenKey(long).id == tokenKey(long+"s").id {
		t.Error("a long signature's tail is not in the key")
	}
}

// FuzzTokenKey: two tokens have the same key exactly when they are equal,
// and the lent digest is that of the text before the last dot.
func FuzzTokenKey(f *testing.F) {
	f.Add("a.b.c", "a.b.c")
	f.Add("a.b.c", "a.bc")
	f.Add("t", "t.")
	f.Add("", ".")
	f.Add("x.y", "x.y.")
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, kb := tokenKey(a), tokenKey(b)
		if (a == b) != (ka.id == kb.id) {
			t.Fatalf("%q and %q: equal keys %v", a, b, ka.id == kb.id)
		}
		if i := strings.LastIndexByte(a, '.'); i >= 0 {
			p := parsed{signingInput: a[:i]}
			if ka.lendSum(&p); !p.hasSum || p.siSum != sha256.Sum256([]byte(a[:i])) {
				t.Fatalf("%q: wrong signing-input digest", a)
			}
		} else if ka.hasSI {
			t.Fatalf("%q: digest without a dot", a)
		}
	})
}

// TestVerifySignatureSum: a lent SHA-256 digest is what SHA-256
// algorithms verify (so it must be the signing input's: lendSum
// lends it for the same text only); other algorithms ignore it.
func TestVerifySignatureSum(t *testing.T) {
	const in, other = "aGVhZGVy.cGF5bG9hZA", "aGVhZGVy.cGF5bG9hZB"
	rsaK := testRSA(0)
	good, wrong := sha256.Sum256([]byte(in)), sha256.Sum256([]byte(other))
	for _, alg := range []string{"RS256", "PS256", "RS384", "RS512"} {
		sig := b64(sigOver(alg, rsaK, in))
		if err := verifySignatureSum(&rsaK.PublicKey, jose.SignatureAlgorithm(alg), in, sig, &good); err != nil {
			t.Errorf("%s with the right digest: %v", alg, err)
		}
		err := verifySignatureSum(&rsaK.PublicKey, jose.SignatureAlgorithm(alg), in, sig, &wrong)
		if sha256Alg := strings.HasSuffix(alg, "256"); sha256Alg != (err != nil) {
			t.Errorf("%s with another text's digest: %v", alg, err)
		}
	}
}
