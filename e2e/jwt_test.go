package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// jwt is a decoded compact JWS, not yet trusted.
type jwt struct {
	raw    string
	header map[string]any
	claims map[string]any
}

// decodeJWT decodes tok without verifying it; it fails t when tok is not a
// compact JWS with JSON header and payload.
func decodeJWT(t *testing.T, tok string) jwt {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3 (a compact JWS)", len(parts))
	}
	j := jwt{raw: tok}
	for i, dst := range []*map[string]any{&j.header, &j.claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("token part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("token part %d: %v", i, err)
		}
	}
	return j
}

// str returns the string claim name ("" when absent or not a string).
func (j jwt) str(name string) string {
	s, _ := j.claims[name].(string)
	return s
}

// strs returns a claim that is a string or an array of strings.
func (j jwt) strs(name string) []string {
	switch v := j.claims[name].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// time returns a NumericDate claim (zero when absent).
func (j jwt) time(name string) time.Time {
	f, ok := j.claims[name].(float64)
	if !ok {
		return time.Time{}
	}
	return time.Unix(int64(f), 0)
}

// scopes returns the union of the space-separated scope claim and the scp
// array (DESIGN.md, Precise rules), sorted.
func (j jwt) scopes() []string {
	set := map[string]bool{}
	for _, s := range strings.Fields(j.str("scope")) {
		set[s] = true
	}
	for _, s := range j.strs("scp") {
		set[s] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// embedded returns the map of inner tokens at a dotted claim path
// ("embedded_tokens", "ext.embedded_tokens"); nil when absent.
func (j jwt) embedded(path string) map[string]string {
	var v any = j.claims
	for _, seg := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[seg]
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		s, _ := e.(string)
		out[k] = s
	}
	return out
}

// fetchJWKS GETs a JWK set.
func fetchJWKS(t *testing.T, client *http.Client, url string) jose.JSONWebKeySet {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return set
}

// verifyJWT checks tok's signature against the key of set named by its kid,
// with one of algs, and returns it decoded.
func verifyJWT(t *testing.T, tok string, set jose.JSONWebKeySet, algs ...jose.SignatureAlgorithm) jwt {
	t.Helper()
	sig, err := jose.ParseSigned(tok, algs)
	if err != nil {
		t.Fatalf("parse JWS: %v", err)
	}
	kid := sig.Signatures[0].Header.KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the key set, want 1", kid, len(keys))
	}
	if _, err := sig.Verify(keys[0].Public()); err != nil {
		t.Fatalf("verify kid %q: %v", kid, err)
	}
	return decodeJWT(t, tok)
}

// flip returns tok with one character of its payload changed, so that its
// signature no longer matches but it still parses.
func flip(tok string) string {
	parts := strings.Split(tok, ".")
	p := []byte(parts[1])
	i := len(p) / 2
	if p[i] == 'A' {
		p[i] = 'B'
	} else {
		p[i] = 'A'
	}
	parts[1] = string(p)
	return strings.Join(parts, ".")
}
