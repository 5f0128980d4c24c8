package unwrap

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPayloadPoolNoAlias verifies distinct tokens, then many more (which
// reuse the recycled payload buffers, concurrently), and wants every
// result kept from the first ones unchanged: nothing a Result holds may
// alias a recycled payload.
func TestPayloadPoolNoAlias(t *testing.T) {
	e := newEnv(t, envOpts{})
	v := e.sc.verifier
	ctx := context.Background()
	type want struct{ outerID, innerID, inner, scope string }
	expect := func(tok string) want {
		seg := strings.Split(tok, ".")[1]
		b, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			JTI   string            `json:"jti"`
			Scope string            `json:"scope"`
			Emb   map[string]string `json:"embedded_tokens"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		ib, err := base64.RawURLEncoding.DecodeString(strings.Split(c.Emb["orders"], ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		var ic struct {
			JTI string `json:"jti"`
		}
		if err := json.Unmarshal(ib, &ic); err != nil {
			t.Fatal(err)
		}
		return want{c.JTI, ic.JTI, c.Emb["orders"], c.Scope}
	}
	check := func(r *Result, w want) {
		t.Helper()
		if r.Outer.ID != w.outerID || r.InnerClaims.ID != w.innerID || r.Inner != w.inner ||
			strings.Join(r.Outer.Scopes, " ") != w.scope || r.Outer.Subject != "alice" || r.InnerClaims.ClientID != "app" ||
			r.authz != bearerPrefix+w.inner {
			t.Fatalf("result changed: outer jti %q inner jti %q scopes %q; want %+v", r.Outer.ID, r.InnerClaims.ID, r.Outer.Scopes, w)
		}
	}
	const first, more = 8, 64
	kept := make([]*Result, first)
	wants := make([]want, first)
	firstToks := make([]string, first)
	for i := range kept {
		tok := e.outer()
		firstToks[i] = tok
		r, err := v.Verify(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		kept[i], wants[i] = r, expect(tok)
		check(r, wants[i])
	}
	toks := make([]string, more)
	for i := range toks {
		// Longer and different payloads, to overwrite whatever the first
		// tokens' buffers held.
		c := e.outerClaims(e.chain())
		c["pad"] = strings.Repeat("x", 100+i*7)
		toks[i] = sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < more; i += 4 {
				if _, err := v.Verify(ctx, toks[i]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i, r := range kept {
		check(r, wants[i])
	}
	// And served from the cache, the same.
	e.clock.Advance(time.Second)
	for i, tok := range firstToks {
		r, hit, err := v.verifyCached(ctx, tok)
		if err != nil || !hit {
			t.Fatalf("cache: hit %v, %v", hit, err)
		}
		check(r, wants[i])
	}
}
