package unwrap

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/embedtoken/embedtoken/internal/strictjson"
)

// TestLeadingWhitespace: a JWS header or payload that starts with JSON
// whitespace is valid JSON, read as such (it was read as empty: 401).
func TestLeadingWhitespace(t *testing.T) {
	e := newEnv(t, envOpts{})
	inner := e.innerClaims("https://orders.test", "orders:read", 5*time.Minute)
	innerTok := signRaw(e.minter, " \n"+mustJSON(hdr(e.minter, "at+jwt")), "\t\r\n "+mustJSON(inner))
	outer := signRaw(e.idpKey, "  "+mustJSON(hdr(e.idpKey, "at+jwt")), "\n"+mustJSON(e.outerClaims(map[string]any{"orders": innerTok})))
	if rec := e.get("/orders/1", outer); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// TestJWKSCaseVariantMembers: go-jose decodes a JWK with encoding/json,
// which fills "kid" from "KID" too; such a key set is refused.
func TestJWKSCaseVariantMembers(t *testing.T) {
	k := newEdKey("a")
	b, _ := json.Marshal(map[string]any{"keys": []any{k.jwk()}})
	good := string(b)
	if _, err := ParseJWKS(b); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		strings.Replace(good, `"kid":"a"`, `"kid":"a","KID":"b"`, 1),
		strings.Replace(good, `"kid":"a"`, `"Kid":"a"`, 1),
		strings.Replace(good, `"keys"`, `"KEYS":[],"keys"`, 1),
		strings.Replace(good, `"alg":"EdDSA"`, `"alg":"EdDSA","ALG":"RS256"`, 1),
	} {
		if _, err := ParseJWKS([]byte(bad)); !errors.Is(err, strictjson.ErrCaseVariant) {
			t.Errorf("ParseJWKS(%s): got %v, want ErrCaseVariant", bad, err)
		}
	}
}
