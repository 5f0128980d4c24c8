package unwrap

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

func TestKeyRotationAtTheIssuer(t *testing.T) {
	e := newEnv(t, envOpts{})
	k2 := &signingKey{kid: "idp-2", alg: jose.RS256, priv: testRSA(2)}
	tok := sign(k2, hdr(k2, "at+jwt"), e.outerClaims(e.chain()))
	e.idpJWKS.set(e.idpKey, k2)
	// Within jwks_min_refetch of the last fetch (which succeeded), an
	// unknown kid is refused without fetching.
	before := e.idpJWKS.hits.Load()
	checkFail(t, e, e.get("/orders/1", tok), invalidToken(ReasonUnknownKid))
	if e.idpJWKS.hits.Load() != before {
		t.Error("fetched within jwks_min_refetch")
	}
	e.clock.Advance(11 * time.Second)
	if rec := e.get("/orders/1", tok); rec.Code != 200 {
		t.Fatalf("after rotation: status %d %s", rec.Code, rec.Body)
	}
	// The old key is retired: its tokens no longer verify after a refetch.
	e.idpJWKS.set(k2)
	e.clock.Advance(11 * time.Second)
	k3 := &signingKey{kid: "idp-3", alg: jose.RS256, priv: testRSA(2)}
	checkFail(t, e, e.get("/orders/1", sign(k3, hdr(k3, "at+jwt"), e.outerClaims(e.chain()))), invalidToken(ReasonUnknownKid))
	checkFail(t, e, e.get("/orders/1", e.outer()), invalidToken(ReasonUnknownKid))
}

func TestIssuerJWKSDown(t *testing.T) {
	e := newEnv(t, envOpts{})
	good := e.outer()
	e.idpJWKS.down(500)
	e.clock.Advance(11 * time.Second)
	unknown := func() string {
		h := hdr(e.idpKey, "at+jwt")
		h["kid"] = "idp-9"
		return sign(e.idpKey, h, e.outerClaims(e.chain()))
	}
	rec := e.get("/orders/1", unknown())
	checkFail(t, e, rec, wantFail{status: 503, code: codeUnavailable, reason: ReasonKeysUnavailable})
	// Rate-limited while the last fetch failed: still 503, not 401.
	checkFail(t, e, e.get("/orders/1", unknown()), wantFail{status: 503, code: codeUnavailable, reason: ReasonKeysUnavailable})
	// The cached keys keep serving known kids.
	if rec := e.get("/orders/1", good); rec.Code != 200 {
		t.Fatalf("known kid while the issuer is down: %d", rec.Code)
	}
	// Garbage is a failure too, and keeps the keys.
	e.idpJWKS.down(0)
	e.idpJWKS.mu.Lock()
	e.idpJWKS.body = `{"keys": "garbage"}`
	e.idpJWKS.mu.Unlock()
	e.clock.Advance(11 * time.Second)
	checkFail(t, e, e.get("/orders/1", unknown()), wantFail{status: 503, code: codeUnavailable, reason: ReasonKeysUnavailable})
	if rec := e.get("/orders/1", e.outer()); rec.Code != 200 {
		t.Fatalf("known kid after garbage: %d", rec.Code)
	}
	if n := counterValue(t, e.reg, "embedtoken_sidecar_jwks_fetches_total", map[string]string{"issuer": "idp", "result": "error"}); n < 2 {
		t.Errorf("failed fetches counted: %v", n)
	}
	// Back up: an unknown kid is an invalid token again.
	e.idpJWKS.mu.Lock()
	e.idpJWKS.body = ""
	e.idpJWKS.mu.Unlock()
	e.clock.Advance(11 * time.Second)
	checkFail(t, e, e.get("/orders/1", unknown()), invalidToken(ReasonUnknownKid))
}

func TestNotReadyUntilKeysLoad(t *testing.T) {
	e := newEnv(t, envOpts{noStart: true})
	if e.sc.Ready() {
		t.Fatal("ready before Start")
	}
	e.hydra.down(503)
	e.sc.Start(t.Context())
	time.Sleep(100 * time.Millisecond)
	if e.sc.Ready() {
		t.Fatal("ready while the hydra key set is down")
	}
	e.hydra.down(0)
	e.waitReady()
}

func TestConcurrentUnknownKidShareOneFetch(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.clock.Advance(11 * time.Second)
	before := e.idpJWKS.hits.Load()
	h := hdr(e.idpKey, "at+jwt")
	h["kid"] = "idp-9"
	tok := sign(e.idpKey, h, e.outerClaims(e.chain()))
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if rec := e.get("/orders/1", tok); rec.Code != 401 {
				t.Errorf("status %d", rec.Code)
			}
		})
	}
	wg.Wait()
	if n := e.idpJWKS.hits.Load() - before; n != 1 {
		t.Errorf("fetches: got %d, want 1", n)
	}
}

func TestKidlessToken(t *testing.T) {
	e := newEnv(t, envOpts{})
	h := map[string]any{"alg": "RS256", "typ": "at+jwt"}
	tok := sign(e.idpKey, h, e.outerClaims(e.chain()))
	if rec := e.get("/orders/1", tok); rec.Code != 200 {
		t.Fatalf("one key: status %d", rec.Code)
	}
	e.idpJWKS.set(e.idpKey, &signingKey{kid: "idp-2", alg: jose.RS256, priv: testRSA(2)})
	if err := e.sc.verifier.trusts[0].keys.refetch(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	checkFail(t, e, e.get("/orders/1", tok), invalidToken(ReasonAmbiguousKey))
}

func TestParseMaxAge(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"max-age=300", 5 * time.Minute},
		{"public, max-age=5", time.Minute},
		{"max-age=86400", time.Hour},
		{"Max-Age=120, must-revalidate", 2 * time.Minute},
		{"max-age=abc", 0},
	}
	for _, tc := range tests {
		if got := parseMaxAge(tc.in); got != tc.want {
			t.Errorf("parseMaxAge(%q): got %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	k := newEdKey("a")
	priv := jose.JSONWebKey{Key: k.priv, KeyID: "priv", Algorithm: "EdDSA"}
	enc := jose.JSONWebKey{Key: k.priv.Public(), KeyID: "enc", Use: "enc"}
	sym := jose.JSONWebKey{Key: []byte("secret"), KeyID: "hs", Algorithm: "HS256"}
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.jwk(), priv, enc, sym}})
	keys, err := ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].KeyID != "a" || keys[1].KeyID != "priv" || !keys[1].IsPublic() {
		t.Errorf("keys: %+v", keys)
	}
	for _, bad := range []string{``, `{}`, `{"keys":[]}`, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, `{"keys":[],"keys":[]}`, `[]`} {
		if _, err := ParseJWKS([]byte(bad)); err == nil {
			t.Errorf("ParseJWKS(%q): no error", bad)
		}
	}
}

func TestJWKSFileReloaded(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "jwks.json")
	write := func(keys ...*signingKey) {
		var set jose.JSONWebKeySet
		for _, k := range keys {
			set.Keys = append(set.Keys, k.jwk())
		}
		b, _ := json.Marshal(set)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	a, b := newEdKey("a"), newEdKey("b-longer-kid")
	write(a)
	changed := make(chan struct{}, 4)
	ks := &keySet{name: "file", file: p, refresh: time.Minute, minRefetch: time.Second, now: time.Now,
		log: zap.NewNop(), onChange: func() { changed <- struct{}{} }}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go ks.run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for !ks.Loaded() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := ks.find("a", jose.EdDSA); err != nil {
		t.Fatalf("key a: %v", err)
	}
	write(a, b)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("file change not picked up")
	}
	if _, err := ks.find("b-longer-kid", jose.EdDSA); err != nil {
		t.Fatalf("key b: %v", err)
	}
}
