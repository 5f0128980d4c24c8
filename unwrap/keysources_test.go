package unwrap

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestKeySourcesReload replays reloads: sidecars built one after the other
// with the same KeySources reuse the loaded key sets (no fetch, ready at
// once), a changed source gets its own, and closing the last holder stops
// and forgets every set.
func TestKeySourcesReload(t *testing.T) {
	e := newEnv(t, envOpts{noStart: true})
	pool := NewKeySources()
	build := func() *Sidecar {
		t.Helper()
		sc, err := New(e.cat, &Options{Logger: zap.NewNop(), Now: e.clock.Now, KeySources: pool})
		if err != nil {
			t.Fatal(err)
		}
		sc.Start(context.Background())
		return sc
	}
	cur := build()
	deadline := time.Now().Add(5 * time.Second)
	for !cur.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("first sidecar not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := e.idpJWKS.hits.Load() + e.hydra.hits.Load() + e.mjwks.hits.Load()
	if before != 3 {
		t.Fatalf("first load: %d fetches, want 3 (one per source)", before)
	}
	for range 20 {
		next := build()
		if !next.Ready() {
			t.Fatal("a reloaded sidecar with unchanged sources must be ready at once")
		}
		cur.Close()
		cur = next
	}
	if after := e.idpJWKS.hits.Load() + e.hydra.hits.Load() + e.mjwks.hits.Load(); after != before {
		t.Errorf("20 reloads fetched %d key sets, want 0", after-before)
	}
	if n := pool.Len(); n != 3 {
		t.Errorf("key sets held: got %d, want 3", n)
	}
	// The reused sets still serve: a valid token passes the reloaded one.
	rec := httptestRecorder()
	cur.Handler().ServeHTTP(rec, newReq("/orders", e.outer()))
	if rec.Code != http.StatusOK {
		t.Errorf("after reloads: got %d, want 200: %s", rec.Code, rec.Body.String())
	}
	cur.Close()
	cur.Close() // a second Close releases nothing more
	if n := pool.Len(); n != 0 {
		t.Errorf("after the last Close: %d key sets held, want 0", n)
	}
}

// TestKeySourcesChanged: a source whose settings change is a new key set.
func TestKeySourcesChanged(t *testing.T) {
	a := newSourceKey("idp", "https://a.test/jwks", "", "", 0, 0)
	cases := []struct {
		name string
		b    sourceKey
		same bool
	}{
		{"same", newSourceKey("idp", "https://a.test/jwks", "", "", 0, 0), true},
		{"url", newSourceKey("idp", "https://b.test/jwks", "", "", 0, 0), false},
		{"name", newSourceKey("idp2", "https://a.test/jwks", "", "", 0, 0), false},
		{"min refetch", newSourceKey("idp", "https://a.test/jwks", "", "", 0, time.Minute), false},
		{"ca file", newSourceKey("idp", "https://a.test/jwks", "", "testdata/none.pem", 0, 0), false},
	}
	for _, tc := range cases {
		if got := a == tc.b; got != tc.same {
			t.Errorf("%s: same source: got %v, want %v", tc.name, got, tc.same)
		}
	}
}
