package unwrap

import (
	"encoding/base64"
	"slices"
	"testing"
)

// FuzzInspect: Inspect never panics on hostile tokens, and the claims it
// returns beside the Node fields never repeat a registered one.
func FuzzInspect(f *testing.F) {
	b64 := base64.RawURLEncoding.EncodeToString
	hdr := b64([]byte(`{"alg":"EdDSA","kid":"k","typ":"at+jwt"}`))
	inner := hdr + "." + b64([]byte(`{"iss":"m","sub":"a","aud":"x","exp":2000000000,"act":{"sub":"s"}}`)) + ".c2ln"
	for _, payload := range []string{
		`{"iss":"i","sub":"a","exp":2000000000,"email":"a@example.com","embedded_tokens":{"orders":"` + inner + `"}}`,
		`{"iss":"i","ext":{"tenant":"acme","embedded_tokens":{"orders":"` + inner + `"}},"scp":["a"]}`,
		`{"ext":{"embedded_tokens":{}}}`,
		`{"ext":null,"embedded_tokens":null}`,
	} {
		f.Add(hdr + "." + b64([]byte(payload)) + ".c2ln")
	}
	f.Add("ory_at_abc.def")
	f.Fuzz(func(t *testing.T, token string) {
		n, err := Inspect(token, nil)
		if err != nil || n == nil {
			return
		}
		for k := range n.Claims {
			if slices.Contains(shownClaims, k) {
				t.Fatalf("Claims repeats the registered claim %q", k)
			}
		}
	})
}
