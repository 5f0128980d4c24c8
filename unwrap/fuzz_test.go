package unwrap

import (
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary bearer tokens to the verifier: it must never
// panic, and must return either a result or an error.
func FuzzVerify(f *testing.F) {
	e := newEnv(f, envOpts{})
	m := e.chain()
	outer := e.outer()
	f.Add(outer)
	f.Add(m["orders"].(string))
	f.Add(m["billing"].(string))
	f.Add(strings.Replace(outer, ".", "..", 1))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, tok string) {
		r, err := e.sc.verifier.Verify(ctx, tok)
		if (r == nil) == (err == nil) {
			t.Fatalf("result %v and error %v", r, err)
		}
		if err != nil {
			f := asFailure(err)
			if f.Status != 401 && f.Status != 403 && f.Status != 503 {
				t.Fatalf("status %d", f.Status)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	e := newEnv(b, envOpts{})
	tok := e.outer()
	ctx := context.Background()
	v := e.sc.verifier
	b.Logf("outer token %d bytes", len(tok))
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			v.cache.flush()
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	_ = time.Second
}
