package unwrap

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"
)

// extraText renders Extra for comparison: name to raw JSON text.
func extraText(m map[string]json.RawMessage) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func TestOuterClaimsExtra(t *testing.T) {
	for _, tc := range []struct {
		name      string
		payload   string
		path      []string
		skip      map[string]bool
		wantMap   map[string]string
		wantExtra map[string]string
		wantErr   bool
	}{
		{
			name:      "top-level map",
			payload:   `{"iss":"i","sub":"s","scope":"a","tenant":"acme","act":{"sub":"x"},"embedded_tokens":{"orders":"t"}}`,
			path:      []string{"embedded_tokens"},
			wantMap:   map[string]string{"orders": "t"},
			wantExtra: map[string]string{"tenant": `"acme"`, "act": `{"sub":"x"}`},
		},
		{
			name: "nested map: the holder's members added, the top level wins, act only at the top",
			payload: `{"iss":"i","sub":"s","client_id":"c","jti":"j","aud":["a"],"exp":1,"nbf":1,"iat":1,"scp":["x"],
				"email":"top@example.com",
				"ext":{"email":"ext@example.com","tenant":"acme","act":{"sub":"forged"},"sub":"other","embedded_tokens":{"orders":"t"}}}`,
			path:      []string{"ext", "embedded_tokens"},
			wantMap:   map[string]string{"orders": "t"},
			wantExtra: map[string]string{"email": `"top@example.com"`, "tenant": `"acme"`},
		},
		{
			name:      "nested map absent: the holder's claims still count",
			payload:   `{"sub":"s","ext":{"tenant":"acme"}}`,
			path:      []string{"ext", "embedded_tokens"},
			wantExtra: map[string]string{"tenant": `"acme"`},
		},
		{
			name:    "holder null",
			payload: `{"sub":"s","ext":null}`,
			path:    []string{"ext", "embedded_tokens"},
		},
		{
			name:      "introspection members skipped",
			payload:   `{"active":true,"token_type":"Bearer","token_use":"access_token","username":"alice","ext":{"embedded_tokens":{}}}`,
			path:      []string{"ext", "embedded_tokens"},
			skip:      introspectionMembers,
			wantMap:   map[string]string{},
			wantExtra: map[string]string{"username": `"alice"`},
		},
		{
			name:      "no claim path",
			payload:   `{"sub":"s","tenant":"acme"}`,
			wantExtra: map[string]string{"tenant": `"acme"`},
		},
		{
			name:    "only registered claims",
			payload: `{"iss":"i","sub":"s","embedded_tokens":{"orders":"t"}}`,
			path:    []string{"embedded_tokens"},
			wantMap: map[string]string{"orders": "t"},
		},
		{name: "holder not an object", payload: `{"ext":"x"}`, path: []string{"ext", "embedded_tokens"}, wantErr: true},
		{name: "map not of strings", payload: `{"ext":{"embedded_tokens":{"orders":1}}}`, path: []string{"ext", "embedded_tokens"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, extra, err := outerClaims([]byte(tc.payload), tc.path, tc.skip)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if !maps.Equal(m, tc.wantMap) || (m == nil) != (tc.wantMap == nil) {
				t.Errorf("embedded: got %v, want %v", m, tc.wantMap)
			}
			if got := extraText(extra); !maps.Equal(got, tc.wantExtra) || (got == nil) != (tc.wantExtra == nil) {
				t.Errorf("extra: got %v, want %v", got, tc.wantExtra)
			}
		})
	}
}

// TestVerifyOuterExtra: VerifyOuter hands out the non-registered claims of
// a JWT outer token (Hydra-like: claims under ext beside the map) and of an
// introspection answer, never the embedded map itself.
func TestVerifyOuterExtra(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{})
	v := p.sc.verifier

	now := p.clock.Now()
	jwt := sign(p.hydraKey, hdr(p.hydraKey, "JWT"), map[string]any{
		"iss": hydraIssuer, "sub": "alice", "client_id": "app", "jti": "h-1", "scp": []string{"orders:read"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"act": map[string]any{"sub": "gateway"},
		"ext": map[string]any{"tenant": "acme", "embedded_tokens": p.chain()},
	})
	c, err := v.VerifyOuter(t.Context(), jwt)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"act": `{"sub":"gateway"}`, "tenant": `"acme"`}
	if got := extraText(c.Extra); !maps.Equal(got, want) {
		t.Errorf("JWT extra: got %v, want %v", got, want)
	}
	if len(c.Embedded) != 3 {
		t.Errorf("JWT embedded: %d tokens, want 3", len(c.Embedded))
	}

	p.intro.answer(200, p.hydraAnswer(p.chain(), func(a map[string]any) {
		a["ext"].(map[string]any)["tenant"] = "acme"
		a["username"] = "alice@example.com"
	}))
	c, err = v.VerifyOuter(t.Context(), opaque())
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"tenant": `"acme"`, "username": `"alice@example.com"`}
	if got := extraText(c.Extra); !maps.Equal(got, want) {
		t.Errorf("introspection extra: got %v, want %v", got, want)
	}

	// The sidecar's cached result keeps neither the embedded map nor Extra
	// (only what the request path needs), but the registered claims.
	res, err := v.Verify(t.Context(), jwt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outer.Embedded != nil || res.Outer.Extra != nil || res.Outer.ID != "h-1" || res.InnerClaims.Embedded != nil {
		t.Errorf("result outer: embedded %v, extra %v", res.Outer.Embedded, extraText(res.Outer.Extra))
	}
}

// TestOuterOnlyVerifier: a verifier built with OuterOnly never fetches the
// minter's JWKS, is ready without it, verifies outer tokens, and refuses
// Verify.
func TestOuterOnlyVerifier(t *testing.T) {
	e := newEnv(t, envOpts{noStart: true})
	e.mjwks.down(500) // would keep a full verifier from being ready
	for _, outerOnly := range []bool{false, true} {
		v, err := NewVerifier(e.cat, &Options{Now: e.clock.Now, OuterOnly: outerOnly})
		if err != nil {
			t.Fatal(err)
		}
		before := e.mjwks.hits.Load()
		v.Start(context.Background())
		wait := 5 * time.Second
		if !outerOnly {
			wait = 300 * time.Millisecond // never ready: just long enough to fetch
		}
		deadline := time.Now().Add(wait)
		for !v.Ready() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		hits := e.mjwks.hits.Load() - before
		v.Close()
		if !outerOnly {
			if v.Ready() || hits == 0 {
				t.Errorf("full verifier: ready %v with the minter's JWKS down, %d fetches", v.Ready(), hits)
			}
			continue
		}
		if !v.Ready() {
			t.Fatal("outer-only verifier not ready")
		}
		if hits != 0 {
			t.Errorf("outer-only verifier fetched the minter's JWKS %d times", hits)
		}
		c, err := v.VerifyOuter(t.Context(), e.outer())
		if err != nil || c.Subject != "alice" || len(c.Embedded) != 3 {
			t.Errorf("VerifyOuter: %+v, %v", c, err)
		}
		_, err = v.Verify(t.Context(), e.outer())
		var f *Failure
		if !errors.As(err, &f) || !errors.Is(err, ErrInvalidToken) || !errors.Is(f.Err, errOuterOnly) {
			t.Errorf("Verify on an outer-only verifier: got %v, want an invalid token failure (outer only)", err)
		}
		if names := slices.Collect(maps.Keys(c.Extra)); len(names) != 0 {
			t.Errorf("idp token extra: %v, want none", names)
		}
	}
}
