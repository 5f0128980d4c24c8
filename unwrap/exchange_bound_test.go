package unwrap

import (
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestExchangesBounded: a flood of distinct outer tokens that all need an
// exchange (each its own single flight) holds at most maxExchanges calls
// at the token endpoint at once; the others wait for a slot and are
// served once the endpoint answers.
func TestExchangesBounded(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{exchange: true})
	release := make(chan struct{})
	issue := p.issue(5 * time.Minute)
	var inFlight, most atomic.Int64
	p.token.set(func(w http.ResponseWriter, form url.Values) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		issue(w, form)
	})
	const n = 2 * maxExchanges
	toks := make([]string, n)
	for i := range toks {
		toks[i] = p.withoutOrders() // a distinct jti each
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := p.sc.verifier.Verify(t.Context(), toks[i])
			if err == nil && !res.Exchanged {
				err = errors.New("not exchanged")
			}
			errs[i] = err
		})
	}
	for deadline := time.Now().Add(10 * time.Second); inFlight.Load() < maxExchanges && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for calls beyond the bound, if any
	peak := most.Load()
	close(release)
	wg.Wait()
	if peak > maxExchanges || peak == 0 {
		t.Errorf("%d exchanges in flight at once for %d distinct tokens, want at most %d", peak, n, maxExchanges)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	if c := p.token.calls.Load(); c != n {
		t.Errorf("exchanges %d for %d distinct tokens, want %d", c, n, n)
	}
}
