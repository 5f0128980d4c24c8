package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// stubHook is a token hook that answers like embedtoken's, with a fixed
// embedded map, and records what Hydra sent.
type stubHook struct {
	srv    *httptest.Server
	header string
	key    string

	mu     sync.Mutex
	status int // answer with this status instead of 200 when set
	calls  int
	last   map[string]any // last body
	gotKey string         // last value of the api key header
}

func newStubHook(t *testing.T, header, key string) *stubHook {
	t.Helper()
	s := &stubHook{header: header, key: key}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stubHook) serve(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
	s.mu.Lock()
	s.calls++
	s.last = body
	s.gotKey = r.Header.Get(s.header)
	status := s.status
	s.mu.Unlock()
	switch {
	case r.URL.Path != "/hooks/hydra":
		http.NotFound(w, r)
	case r.Header.Get(s.header) != s.key:
		w.WriteHeader(http.StatusUnauthorized)
	case status != 0:
		w.WriteHeader(status)
	default:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"session":{"access_token":{"embedded_tokens":{"orders":"x.y.z"}},"id_token":{}}}`)
	}
}

func (s *stubHook) set(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

func (s *stubHook) snapshot() (calls int, last map[string]any, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.last, s.gotKey
}

// TestHydraTokenHook pins the Hydra v2.3.0 behaviour the product relies on,
// with a stub in place of `embedtoken hook`: the configuration keys, client
// creation, the hook's api_key header and request body, where the hook's
// claims land in a JWT access token, and failing closed when the hook fails.
func TestHydraTokenHook(t *testing.T) {
	const header, key = "X-Embedtoken-Key", "stub-hook-key-0123456789"
	hook := newStubHook(t, header, key)
	h := startHydra(t, hydraOptions{HookURL: hook.srv.URL + "/hooks/hydra", HookHeader: header, HookKey: key})

	basic := hydraClient{ID: "e2e-basic", Secret: "e2e-basic-secret-0123456789", Scope: []string{"orders:read", "billing:charge"}, Audience: []string{"https://gateway.internal"}}
	post := hydraClient{ID: "e2e-post", Secret: "e2e-post-secret-0123456789", Scope: []string{"orders:read"}, AuthMethod: "client_secret_post"}
	h.createClient(t, basic)
	h.createClient(t, post)

	t.Run("jwt with ext claims", func(t *testing.T) {
		tok := h.mustToken(t, basic, []string{"orders:read"}, []string{"https://gateway.internal"})
		j := verifyJWT(t, tok, h.jwks(t), jose.RS256)
		if typ, _ := j.header["typ"].(string); typ != "JWT" {
			t.Errorf("typ: got %q, want JWT", typ)
		}
		if got := j.str("iss"); got != h.issuer {
			t.Errorf("iss: got %q, want %q", got, h.issuer)
		}
		if got := j.str("sub"); got != basic.ID {
			t.Errorf("sub: got %q, want %q", got, basic.ID)
		}
		if got := j.str("client_id"); got != basic.ID {
			t.Errorf("client_id: got %q, want %q", got, basic.ID)
		}
		if got := j.strs("scp"); !reflect.DeepEqual(got, []string{"orders:read"}) {
			t.Errorf("scp: got %v, want [orders:read]", got)
		}
		if got := j.strs("aud"); !reflect.DeepEqual(got, basic.Audience) {
			t.Errorf("aud: got %v, want %v", got, basic.Audience)
		}
		if got := j.embedded("ext.embedded_tokens"); !reflect.DeepEqual(got, map[string]string{"orders": "x.y.z"}) {
			t.Errorf("ext.embedded_tokens: got %v", got)
		}
		if j.str("jti") == "" || j.time("exp").IsZero() {
			t.Errorf("jti or exp missing: %v", j.claims)
		}
		if d := j.time("exp").Sub(j.time("iat")); d != time.Hour {
			t.Errorf("exp - iat: got %s, want 1h", d)
		}

		_, body, gotKey := hook.snapshot()
		if gotKey != key {
			t.Errorf("hook api key header: got %q, want the configured key", gotKey)
		}
		req, _ := body["request"].(map[string]any)
		sess, _ := body["session"].(map[string]any)
		idt, _ := sess["id_token"].(map[string]any)
		exp, _ := idt["expires_at"].(map[string]any)
		if req["client_id"] != basic.ID || idt["subject"] != basic.ID {
			t.Errorf("hook body: client_id %v, subject %v", req["client_id"], idt["subject"])
		}
		if got := strs(req["granted_scopes"]); !reflect.DeepEqual(got, []string{"orders:read"}) {
			t.Errorf("hook body: granted_scopes %v", got)
		}
		if got := strs(req["granted_audience"]); !reflect.DeepEqual(got, basic.Audience) {
			t.Errorf("hook body: granted_audience %v", got)
		}
		at, _ := exp["access_token"].(string)
		if ts, err := time.Parse(time.RFC3339Nano, at); err != nil || ts.Unix() != j.time("exp").Unix() {
			t.Errorf("hook body: expires_at.access_token %q, token exp %v", at, j.time("exp"))
		}
	})

	t.Run("client_secret_post", func(t *testing.T) {
		h.mustToken(t, post, []string{"orders:read"}, nil)
	})

	t.Run("client lifespan", func(t *testing.T) {
		short := hydraClient{ID: "e2e-short", Secret: "e2e-short-secret-0123456789", Scope: []string{"orders:read"}, AccessTokenLifespan: "3s"}
		h.createClient(t, short)
		j := decodeJWT(t, h.mustToken(t, short, []string{"orders:read"}, nil))
		if d := j.time("exp").Sub(j.time("iat")); d != 3*time.Second {
			t.Errorf("exp - iat: got %s, want 3s", d)
		}
	})

	t.Run("refused requests", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			scope     []string
			aud       []string
			wantError string
		}{
			{"scope not allowed", []string{"profile:read"}, nil, "invalid_scope"},
			{"audience not allowed", []string{"orders:read"}, []string{"https://other.internal"}, "invalid_request"},
		} {
			tr := h.token(t, basic, tc.scope, tc.aud)
			if tr.Status != http.StatusBadRequest || tr.Error != tc.wantError {
				t.Errorf("%s: got %d %q, want 400 %q", tc.name, tr.Status, tr.Error, tc.wantError)
			}
		}
	})

	t.Run("hook 403 denies", func(t *testing.T) {
		hook.set(http.StatusForbidden)
		defer hook.set(0)
		before, _, _ := hook.snapshot()
		tr := h.token(t, basic, []string{"orders:read"}, nil)
		after, _, _ := hook.snapshot()
		if tr.Status != http.StatusForbidden || tr.Error != "access_denied" || tr.AccessToken != "" {
			t.Errorf("got %d %q, want 403 access_denied and no token", tr.Status, tr.Error)
		}
		if after-before != 1 {
			t.Errorf("hook called %d times, want 1 (no retry on 403)", after-before)
		}
	})

	t.Run("hook down fails closed", func(t *testing.T) {
		hook.srv.Close()
		tr := h.token(t, basic, []string{"orders:read"}, nil)
		if tr.Status < 500 || tr.AccessToken != "" {
			t.Errorf("got %d %q with token %v, want a 5xx and no token", tr.Status, tr.Error, tr.AccessToken != "")
		}
		t.Logf("hook down: %d %s after %s", tr.Status, tr.Error, tr.Elapsed.Round(time.Millisecond))
	})

	t.Run("restart makes new keys", func(t *testing.T) {
		before := h.jwks(t)
		h.restart(t)
		after := h.jwks(t)
		for _, k := range after.Keys {
			if len(before.Key(k.KeyID)) > 0 {
				t.Errorf("kid %q survived a restart", k.KeyID)
			}
		}
		tr := h.token(t, basic, []string{"orders:read"}, nil)
		if tr.Status != http.StatusUnauthorized || tr.Error != "invalid_client" {
			t.Errorf("token after restart: got %d %q, want 401 invalid_client (clients are forgotten)", tr.Status, tr.Error)
		}
	})
}

// TestHydraOpaqueIntrospection pins the phantom-token reference deployment:
// opaque access tokens whose hook claims come back from introspection under
// ext.
func TestHydraOpaqueIntrospection(t *testing.T) {
	const header, key = "X-Embedtoken-Key", "stub-hook-key-0123456789"
	hook := newStubHook(t, header, key)
	h := startHydra(t, hydraOptions{HookURL: hook.srv.URL + "/hooks/hydra", HookHeader: header, HookKey: key, AccessToken: "opaque"})
	c := hydraClient{ID: "e2e-opaque", Secret: "e2e-opaque-secret-0123456789", Scope: []string{"orders:read"}}
	h.createClient(t, c)
	tok := h.mustToken(t, c, []string{"orders:read"}, nil)
	if !strings.HasPrefix(tok, "ory_at_") || strings.Count(tok, ".") != 1 {
		t.Errorf("opaque token: got %d chars, prefix %q; want ory_at_...", len(tok), tok[:min(7, len(tok))])
	}
	in := h.introspect(t, tok)
	ext, _ := in["ext"].(map[string]any)
	emb, _ := ext["embedded_tokens"].(map[string]any)
	if in["active"] != true || in["token_use"] != "access_token" || in["iss"] != h.issuer || emb["orders"] != "x.y.z" {
		t.Errorf("introspection: %v", in)
	}
}

func strs(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, e := range a {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}
