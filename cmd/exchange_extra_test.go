package cmd

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/embedtoken/embedtoken/mint"
)

// TestHookExchangeSubjectClaims: the claims an API declares and the
// subject's act reach the issued token from a JWT subject token and from an
// introspected one alike (unwrap.Claims.Extra), the claims beside the
// embedded map (ext) included.
func TestHookExchangeSubjectClaims(t *testing.T) {
	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"active":true,"iss":"https://opaque.test","sub":"user-2","client_id":"web-app","scope":"orders:read",
			"exp":%d,"token_use":"access_token","token_type":"Bearer","act":{"sub":"gateway"},
			"ext":{"tenant":"globex","embedded_tokens":{}}}`, time.Now().Add(time.Hour).Unix())
	}))
	t.Cleanup(intro.Close)
	h := newExchangeHook(t, `jwks_file = "issuer/jwks.json"`, exchangeClientHCL+fmt.Sprintf(`
trust "opaque" {
  issuer            = "https://opaque.test"
  introspection_url = %q
  token_prefix      = "ory_at_"
  claim             = "ext.embedded_tokens"
}
`, intro.URL))

	// The development issuer drops reserved names such as act: the JWT's
	// prior act is covered by unwrap's TestVerifyOuterExtra.
	s := mint.Subject{Sub: "user-1", ClientID: "web-app", Scopes: []string{"orders:read"}, Exp: h.issuer.Exp(),
		Claims: map[string]any{"ext": map[string]any{"tenant": "acme", "embedded_tokens": map[string]string{}}}}
	jwt, err := h.issuer.Sign(s, mint.Result{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, tenant, act string
	}{
		{"jwt", jwt, "acme", `{"sub":"orders-sidecar"}`},
		{"introspected", "ory_at_opaque", "globex", `{"sub":"orders-sidecar","act":{"sub":"gateway"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := h.exchange(tc.token)
			if status != 200 {
				t.Fatalf("exchange: %d %v", status, body)
			}
			c := payload(t, body["access_token"].(string))
			if c["tenant"] != tc.tenant {
				t.Errorf("tenant: got %v, want %q", c["tenant"], tc.tenant)
			}
			var want any
			_ = json.Unmarshal([]byte(tc.act), &want)
			if got, _ := json.Marshal(c["act"]); !reflect.DeepEqual(c["act"], want) {
				t.Errorf("act: got %s, want %s", got, tc.act)
			}
			for _, k := range []string{"ext", "token_use", "token_type", "active"} {
				if _, ok := c[k]; ok {
					t.Errorf("issued token carries %q", k)
				}
			}
		})
	}
	// The subject verifier verifies outer tokens only: it never loads the
	// minter's own key set (keys/jwks.json here), and is ready without it.
	if !h.rt.subjects.Ready() {
		t.Error("subject verifier not ready")
	}
	if _, err := h.rt.subjects.v.Verify(t.Context(), jwt); err == nil {
		t.Error("subject verifier's Verify accepted a token: it should be outer-only")
	}
}
