package unwrap

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// BenchmarkAuthz compares a decision with the proxy it replaces, in one
// run (compare the ratios): the proxy warm (a stub upstream), then
// /authz/forward and /authz/envoy/ warm and cold, and Decide (what the
// gRPC Check calls, without protobuf and transport) warm.
func BenchmarkAuthz(b *testing.B) {
	e := newEnv(b, envOpts{})
	sc, err := New(e.cat, &Options{Now: e.clock.Now, UpstreamTransport: stubTransport{}})
	if err != nil {
		b.Fatal(err)
	}
	sc.Start(context.Background())
	defer sc.Close()
	for !sc.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	tok := e.outer()
	forward := benchRequest(tok)
	forward.RequestURI = AuthzForwardPath
	forward.Header.Set("X-Forwarded-Method", "GET")
	forward.Header.Set("X-Forwarded-Uri", "/orders/1?x=1")
	envoy := benchRequest(tok)
	envoy.RequestURI = AuthzEnvoyPrefix + "/orders/1?x=1"
	run := func(name string, h http.Handler, req *http.Request, before func()) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			w := &nopWriter{h: http.Header{}}
			for b.Loop() {
				if before != nil {
					before()
				}
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, req)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
	run("proxy-warm", sc.Handler(), benchRequest(tok), nil)
	run("forward-warm", sc.AuthzHandler(), forward, nil)
	run("envoy-warm", sc.AuthzHandler(), envoy, nil)
	run("forward-cold", sc.AuthzHandler(), forward, sc.verifier.cache.flush)
	b.Run("decide-warm", func(b *testing.B) {
		b.ReportAllocs()
		h := http.Header{"Authorization": {"Bearer " + tok}, "User-Agent": {"envoy"}}
		for b.Loop() {
			if d := sc.Decide(context.Background(), "GET", "/orders/1?x=1", "orders.test", h); !d.Allowed() {
				b.Fatalf("status %d", d.Status)
			}
		}
	})
}
