package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// envBench set to 1 (with EMBEDTOKEN_E2E_HYDRA=1) runs the benchmark tests.
const envBench = "EMBEDTOKEN_BENCH"

// The bounds of TestBenchTokenEndpoint: a sequential phase of rounds, each
// a batch of token requests against each Hydra and a batch of direct hook
// POSTs (the order reversed every round), then a concurrent phase. The
// phases stop starting rounds once their budget is spent.
const (
	benchWarmup      = 20 // requests per target before measuring
	benchRounds      = 10
	benchBatch       = 30 // sequential requests per target per round
	benchSeqBudget   = 60 * time.Second
	benchWorkers     = 4
	benchConcPerWork = 15 // requests per worker per concurrent batch
	benchConcRounds  = 6
	benchConcBudget  = 30 * time.Second
	benchClockTicks  = 100                   // USER_HZ of /proc/<pid>/stat on Linux
	benchHookPace    = 13 * time.Millisecond // the pause before each paced hook POST: about one Hydra token
)

// TestBenchTokenEndpoint measures what `embedtoken hook` adds to Ory Hydra
// v2.3.0's token endpoint (client_credentials, JWT access tokens signed
// RS256-4096, dsn memory). Four Hydra instances with the same client are
// asked for every scope of the shipped catalog (orders with billing, ledger
// and inventory nested, and profile), in batches interleaved round by round
// (the order reversed every round) so that a shared machine's drift touches
// all alike:
//
//   - no hook;
//   - a stub hook in the test process answering a tiny fixed map: what
//     calling any hook costs Hydra;
//   - a stub replaying the answer `embedtoken hook` gave to the body this
//     Hydra sent (the same bytes every time, nothing minted): what carrying
//     a map of that size costs Hydra;
//   - the real `embedtoken hook` with the shipped catalog;
//   - the same replaying stub in a process of its own
//     (e2e/bench/cmd/hookstub), woken from idle by every call as the hook
//     is: the hook minus it is embedtoken's share.
//
// The hook alone is measured with direct POSTs of the body Hydra sent, back
// to back and paced like Hydra's calls (one per token: an idle process
// answers slower), beside the stub process alike, and with its
// embedtoken_mint_duration_seconds metric;
// Hydra's and the hook's
// CPU time per token come from /proc. A short concurrent phase compares no
// hook and the real hook under a few workers. It logs tables; it fails only
// when something does not work.
func TestBenchTokenEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped under -short")
	}
	if os.Getenv(envBench) != "1" {
		t.Skipf("e2e: set %s=1 (and %s=1) to run the benchmarks", envBench, envHydra)
	}
	needHydra(t)
	client := hydraClient{ID: "bench-client", Secret: "bench-client-secret-" + randomHex(t, 8), Scope: hydraAllowed, Audience: []string{hydraGateway}}
	scopes := hydraAllowed // every scope of the catalog: orders (billing, ledger, inventory nested) and profile
	aud := []string{hydraGateway}

	hydraAddrs := freeAddrs(t, 2)
	st := newStack(t, stackOptions{HydraIssuer: "http://" + hydraAddrs[0]})
	st.startHook(t)
	withHook := startHydra(t, hydraOptions{
		PublicAddr: hydraAddrs[0], AdminAddr: hydraAddrs[1],
		HookURL: st.hookURL(), HookHeader: hookHeader, HookKey: st.hookKey,
	})
	none := startHydra(t, hydraOptions{})
	tiny := newFakeHook(t, st.hookKey, []byte(`{"session":{"access_token":{"embedded_tokens":{"orders":"x.y.z"}},"id_token":{}}}`))
	stubbed := startHydra(t, hydraOptions{HookURL: tiny.url(), HookHeader: hookHeader, HookKey: st.hookKey})
	replay := newFakeHook(t, st.hookKey, tiny.answer)
	replayed := startHydra(t, hydraOptions{HookURL: replay.url(), HookHeader: hookHeader, HookKey: st.hookKey})
	for _, h := range []*hydra{withHook, none, stubbed, replayed} {
		h.createClient(t, client)
	}

	// The body Hydra sends its hook for this client and these scopes, and
	// the hook's answer to it, which the replaying stub sends from now on.
	replayed.mustToken(t, client, scopes, aud)
	captured := replay.firstBody()
	answer, _, err := postHook(context.Background(), st, captured)
	if err != nil {
		t.Fatalf("POST /hooks/hydra with the body Hydra sent: %v", err)
	}
	replay.setAnswer(answer)
	// The same replay in a process of its own, woken from idle by each
	// call as the hook is: with it, the difference is embedtoken's work.
	stubProc := startHookStub(t, st.hookKey, answer)
	stubProcessed := startHydra(t, hydraOptions{HookURL: stubProc.url, HookHeader: hookHeader, HookKey: st.hookKey})
	stubProcessed.createClient(t, client)
	stubProcessed.mustToken(t, client, scopes, aud)

	// What the tokens look like, and that each configuration does what it
	// says.
	tokReal := withHook.mustToken(t, client, scopes, aud)
	tokNone := none.mustToken(t, client, scopes, aud)
	tokReplayed := replayed.mustToken(t, client, scopes, aud)
	emb := decodeJWT(t, tokReal).embedded("ext.embedded_tokens")
	if emb["orders"] == "" || emb["profile"] == "" {
		t.Fatalf("token with the hook: ext.embedded_tokens has %v, want orders and profile", benchKeys(emb))
	}
	if e := decodeJWT(t, tokReplayed).embedded("ext.embedded_tokens"); e["orders"] == "" || e["profile"] == "" {
		t.Fatalf("token with the replayed answer: ext.embedded_tokens has %v, want orders and profile", benchKeys(e))
	}
	if e := decodeJWT(t, tokNone).embedded("ext.embedded_tokens"); len(e) != 0 {
		t.Fatalf("token without the hook carries an embedded map: %v", benchKeys(e))
	}
	tokOrders := withHook.mustToken(t, client, hydraGranted, aud)
	tokOrdersNone := none.mustToken(t, client, hydraGranted, aud)

	mintURL := "http://" + st.hookAddr.admin + "/metrics"
	mintSum0 := scrape(t, st.client, mintURL, "embedtoken_mint_duration_seconds_sum")
	mintN0 := scrape(t, st.client, mintURL, "embedtoken_mint_duration_seconds_count")

	hookPID := st.hook.cmd.Process.Pid
	hookAlone := func(ctx context.Context) (time.Duration, error) {
		_, d, err := postHook(ctx, st, captured)
		return d, err
	}
	stubAlone := func(ctx context.Context) (time.Duration, error) {
		_, d, err := postHookURL(ctx, st.client, stubProc.url, st.hookKey, captured)
		return d, err
	}
	paced := func(do func(context.Context) (time.Duration, error)) func(context.Context) (time.Duration, error) {
		return func(ctx context.Context) (time.Duration, error) {
			time.Sleep(benchHookPace) // as Hydra calls it: once per token
			return do(ctx)
		}
	}
	targets := []*benchTarget{
		{name: "hydra, no hook", do: tokenRequest(none, client, scopes, aud), hydraPID: none.p.cmd.Process.Pid},
		{name: "hydra + stub hook, tiny map", do: tokenRequest(stubbed, client, scopes, aud), hydraPID: stubbed.p.cmd.Process.Pid},
		{name: "hydra + stub replaying the map", do: tokenRequest(replayed, client, scopes, aud), hydraPID: replayed.p.cmd.Process.Pid},
		{name: "hydra + embedtoken hook", do: tokenRequest(withHook, client, scopes, aud), hydraPID: withHook.p.cmd.Process.Pid, hookPID: hookPID},
		{name: "hook alone, POST /hooks/hydra", do: hookAlone, hookPID: hookPID},
		{name: "hook alone, one per 13 ms", do: paced(hookAlone), hookPID: hookPID},
		{name: "hydra + stub process replaying", do: tokenRequest(stubProcessed, client, scopes, aud), hydraPID: stubProcessed.p.cmd.Process.Pid, hookPID: stubProc.pid},
		{name: "stub process alone", do: stubAlone, hookPID: stubProc.pid},
		{name: "stub process, one per 13 ms", do: paced(stubAlone), hookPID: stubProc.pid},
	}
	base, stub, replays, hooked, hookOnly, hookPaced := targets[0], targets[1], targets[2], targets[3], targets[4], targets[5]
	stubProcHydra, stubOnly, stubPaced := targets[6], targets[7], targets[8]
	for _, tg := range targets {
		for i := range benchWarmup {
			if _, err := tg.do(context.Background()); err != nil {
				t.Fatalf("%s: warm-up request %d: %v", tg.name, i, err)
			}
		}
	}

	// Sequential: one request at a time, batches interleaved, the order
	// reversed every round.
	start := time.Now()
	rounds := 0
	deltas := map[*benchTarget][]time.Duration{} // per round: its median - the no-hook median
	// per round: the hook's median - the stub process's, through Hydra,
	// paced and back to back: embedtoken's share
	shares := map[*benchTarget][]time.Duration{}
	for r := 0; r < benchRounds && time.Since(start) < benchSeqBudget; r++ {
		order := slices.Clone(targets)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		batch := map[*benchTarget][]time.Duration{}
		for _, tg := range order {
			d, err := tg.sequential(benchBatch)
			if err != nil {
				t.Fatalf("round %d: %s: %v", r, tg.name, err)
			}
			batch[tg] = d
		}
		for _, tg := range []*benchTarget{stub, replays, hooked, stubProcHydra} {
			deltas[tg] = append(deltas[tg], median(batch[tg])-median(batch[base]))
		}
		for tg, ref := range map[*benchTarget]*benchTarget{hooked: stubProcHydra, hookPaced: stubPaced, hookOnly: stubOnly} {
			shares[tg] = append(shares[tg], median(batch[tg])-median(batch[ref]))
		}
		rounds++
	}
	seqWall := time.Since(start)
	mintSum := scrape(t, st.client, mintURL, "embedtoken_mint_duration_seconds_sum") - mintSum0
	mintN := scrape(t, st.client, mintURL, "embedtoken_mint_duration_seconds_count") - mintN0

	// Concurrent: benchWorkers clients at once against one Hydra, then the
	// other.
	start = time.Now()
	concRounds := 0
	var ratios []float64 // per round: tokens/s with the hook / without
	for r := 0; r < benchConcRounds && time.Since(start) < benchConcBudget; r++ {
		order := []*benchTarget{base, hooked}
		if r%2 == 1 {
			slices.Reverse(order)
		}
		rate := map[*benchTarget]float64{}
		for _, tg := range order {
			r0, w0 := len(tg.conc), tg.concWall
			if err := tg.concurrent(benchWorkers, benchConcPerWork); err != nil {
				t.Fatalf("concurrent round %d: %s: %v", r, tg.name, err)
			}
			rate[tg] = float64(len(tg.conc)-r0) / (tg.concWall - w0).Seconds()
		}
		ratios = append(ratios, rate[hooked]/rate[base])
		concRounds++
	}

	var b strings.Builder
	fmt.Fprintf(&b, "Hydra v2.3.0 token endpoint, client_credentials, JWT access tokens (RS256-4096), dsn memory, loopback, %d CPUs\n", runtime.NumCPU())
	fmt.Fprintf(&b, "scope %q: the shipped catalog embeds %s (billing, ledger, inventory nested)\n", strings.Join(scopes, " "), strings.Join(benchKeys(emb), " and "))
	fmt.Fprintf(&b, "sequential: %d rounds x %d requests per target, interleaved (order reversed every round), %s; latency and CPU in ms\n\n", rounds, benchBatch, seqWall.Round(time.Millisecond))
	fmt.Fprintf(&b, "%-30s %4s %6s %6s %6s %6s %8s %9s %8s %16s %14s\n", "sequential", "n", "p50", "p90", "p99", "mean", "tokens/s", "Hydra CPU", "hook CPU", "added p50", "rounds' added")
	for _, tg := range targets {
		addedP50, roundsAdded := "", ""
		if d := deltas[tg]; len(d) > 0 {
			x, y := benchPct(tg.seq, 50), benchPct(base.seq, 50)
			addedP50 = fmt.Sprintf("%+.2f (%+.1f%%)", float64(x-y)/1e6, 100*float64(x-y)/float64(y))
			slices.Sort(d)
			roundsAdded = fmt.Sprintf("%+.2f..%+.2f", float64(d[0])/1e6, float64(d[len(d)-1])/1e6)
		}
		fmt.Fprintf(&b, "%-30s %4d %6s %6s %6s %6s %8.1f %9s %8s %16s %14s\n", tg.name, len(tg.seq),
			benchMS(benchPct(tg.seq, 50)), benchMS(benchPct(tg.seq, 90)), benchMS(benchPct(tg.seq, 99)), benchMS(benchMean(tg.seq)),
			float64(len(tg.seq))/benchSum(tg.seq).Seconds(), tg.cpuPerReq(tg.hydraCPU, tg.hydraPID), tg.cpuPerReq(tg.hookCPU, tg.hookPID), addedP50, roundsAdded)
	}
	fmt.Fprintf(&b, "(tokens/s: requests / time spent in them, one at a time; CPU per request from /proc/<pid>/stat, 10 ms ticks summed over\n")
	fmt.Fprintf(&b, " the batches, the in-process stubs run in the test process, uncounted, the stub process's CPU is in the hook column;\n")
	fmt.Fprintf(&b, " rounds' added: the smallest and largest difference of a round's batch median from the no-hook batch median)\n\n")
	added := func(p float64) string {
		x, y := benchPct(hooked.seq, p), benchPct(base.seq, p)
		return fmt.Sprintf("%+.2f ms (%+.1f %%)", float64(x-y)/1e6, 100*float64(x-y)/float64(y))
	}
	fmt.Fprintf(&b, "added by embedtoken hook: p50 %s, p90 %s, p99 %s, mean %+.2f ms (%+.1f %%)\n",
		added(50), added(90), added(99), float64(benchMean(hooked.seq)-benchMean(base.seq))/1e6,
		100*float64(benchMean(hooked.seq)-benchMean(base.seq))/float64(benchMean(base.seq)))
	p50 := func(tg *benchTarget) float64 { return float64(benchPct(tg.seq, 50)) / 1e6 }
	fmt.Fprintf(&b, "  split at p50: Hydra calling a hook %+.2f ms, Hydra carrying the map %+.2f ms, embedtoken minting and answering (real hook - replay) %+.2f ms\n",
		p50(stub)-p50(base), p50(replays)-p50(stub), p50(hooked)-p50(replays))
	share := func(tg, ref *benchTarget) string {
		d := slices.Clone(shares[tg])
		slices.Sort(d)
		return fmt.Sprintf("p50 %+.2f ms, p90 %+.2f ms, p99 %+.2f ms (rounds' medians %+.2f..%+.2f, median %+.2f)",
			float64(benchPct(tg.seq, 50)-benchPct(ref.seq, 50))/1e6, float64(benchPct(tg.seq, 90)-benchPct(ref.seq, 90))/1e6,
			float64(benchPct(tg.seq, 99)-benchPct(ref.seq, 99))/1e6,
			float64(d[0])/1e6, float64(d[len(d)-1])/1e6, float64(median(d))/1e6)
	}
	fmt.Fprintf(&b, "embedtoken's share (the hook - the stub process replaying its answer, both separate processes):\n")
	fmt.Fprintf(&b, "  through Hydra:         %s\n", share(hooked, stubProcHydra))
	fmt.Fprintf(&b, "  direct, one per %s: %s\n", benchHookPace, share(hookPaced, stubPaced))
	fmt.Fprintf(&b, "  direct, back to back:  %s\n", share(hookOnly, stubOnly))
	if mintN > 0 {
		fmt.Fprintf(&b, "hook alone: POST /hooks/hydra p50 %.2f ms round trip back to back, %.2f ms one per %s; embedtoken_mint_duration_seconds mean %.3f ms over %.0f mints\n",
			p50(hookOnly), p50(hookPaced), benchHookPace, 1e3*mintSum/mintN, mintN)
	}
	if cpuTime(hooked.hydraPID) >= 0 && cpuTime(hooked.hookPID) >= 0 && cpuTime(base.hydraPID) >= 0 {
		x := float64(hooked.hydraCPU+hooked.hookCPU) / float64(len(hooked.seq)) / 1e6
		y := float64(base.hydraCPU) / float64(len(base.seq)) / 1e6
		fmt.Fprintf(&b, "CPU per token: Hydra + hook %.2f ms, Hydra without a hook %.2f ms: %+.2f ms (%+.1f %%)\n", x, y, x-y, 100*(x-y)/y)
	}
	calls, conns := tiny.stats()
	fmt.Fprintf(&b, "Hydra's hook client: %d connection(s) for %d calls to the tiny stub\n", conns, calls)
	pctP50 := 100 * (p50(hooked) - p50(base)) / p50(base)
	verdict := "MET"
	if pctP50 > 5 {
		verdict = "MISSED"
	}
	fmt.Fprintf(&b, "goal \"the hook adds at most 5 %% to Hydra's token endpoint latency\" (p50): %s (%+.1f %%)\n\n", verdict, pctP50)

	fmt.Fprintf(&b, "%-30s %4s %6s %6s %6s %8s\n", fmt.Sprintf("concurrent, %d workers", benchWorkers), "n", "p50", "p90", "p99", "tokens/s")
	for _, tg := range []*benchTarget{base, hooked} {
		fmt.Fprintf(&b, "%-30s %4d %6s %6s %6s %8.1f\n", tg.name, len(tg.conc),
			benchMS(benchPct(tg.conc, 50)), benchMS(benchPct(tg.conc, 90)), benchMS(benchPct(tg.conc, 99)), tg.concRate())
	}
	slices.Sort(ratios)
	fmt.Fprintf(&b, "(%d rounds x %d workers x %d requests per target, interleaved; tokens/s %+.1f %% with the hook, rounds %+.1f..%+.1f %%)\n\n",
		concRounds, benchWorkers, benchConcPerWork, 100*(hooked.concRate()/base.concRate()-1), 100*(ratios[0]-1), 100*(ratios[len(ratios)-1]-1))

	fmt.Fprintf(&b, "%-30s %-20s %s\n", "access_token bytes", "all catalog scopes", "orders:read billing:charge ledger:append")
	fmt.Fprintf(&b, "%-30s %-20d %d\n", "  without the hook", len(tokNone), len(tokOrdersNone))
	fmt.Fprintf(&b, "%-30s %-20d %d\n", "  with the embedded map", len(tokReal), len(tokOrders))
	fmt.Fprintf(&b, "%-30s %-20d %d   (nginx's line limit: 8192)", "  Authorization header line", authLine(tokReal), authLine(tokOrders))
	t.Log("\n" + b.String())
}

// fakeHook is a token hook in the test process that answers every call
// with fixed bytes (after checking the api key), records the first body it
// gets, and counts calls and the connections they came on.
type fakeHook struct {
	srv    *httptest.Server
	key    string
	answer []byte // the initial answer; setAnswer changes what is sent

	mu    sync.Mutex
	cur   []byte
	first []byte
	calls int
	conns map[string]bool
}

func newFakeHook(t *testing.T, key string, answer []byte) *fakeHook {
	t.Helper()
	f := &fakeHook{key: key, answer: answer, cur: answer, conns: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHook) url() string { return f.srv.URL + "/hooks/hydra" }

func (f *fakeHook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	f.calls++
	f.conns[r.RemoteAddr] = true
	if f.first == nil {
		f.first = body
	}
	answer := f.cur
	f.mu.Unlock()
	if r.URL.Path != "/hooks/hydra" || r.Header.Get(hookHeader) != f.key {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(answer)
}

func (f *fakeHook) firstBody() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first
}

func (f *fakeHook) setAnswer(b []byte) {
	f.mu.Lock()
	f.cur = b
	f.mu.Unlock()
}

func (f *fakeHook) stats() (calls, conns int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, len(f.conns)
}

// benchTarget is one configuration under measurement.
type benchTarget struct {
	name              string
	do                func(context.Context) (time.Duration, error)
	hydraPID, hookPID int // the processes whose CPU time the target spends (0: none)
	seq               []time.Duration
	hydraCPU, hookCPU time.Duration // CPU during the sequential batches
	conc              []time.Duration
	concWall          time.Duration
}

func (tg *benchTarget) sequential(n int) ([]time.Duration, error) {
	h0, k0 := cpuTime(tg.hydraPID), cpuTime(tg.hookPID)
	out := make([]time.Duration, 0, n)
	for range n {
		d, err := tg.do(context.Background())
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	tg.hydraCPU += cpuTime(tg.hydraPID) - h0
	tg.hookCPU += cpuTime(tg.hookPID) - k0
	tg.seq = append(tg.seq, out...)
	return out, nil
}

// cpuPerReq is cpu per sequential request in ms, "-" without a process or
// where /proc cannot be read.
func (tg *benchTarget) cpuPerReq(cpu time.Duration, pid int) string {
	if pid == 0 || len(tg.seq) == 0 || cpuTime(pid) < 0 {
		return "-"
	}
	return benchMS(cpu / time.Duration(len(tg.seq)))
}

func (tg *benchTarget) concRate() float64 {
	if tg.concWall <= 0 {
		return 0
	}
	return float64(len(tg.conc)) / tg.concWall.Seconds()
}

// concurrent runs workers clients at once, each sending each requests in
// sequence.
func (tg *benchTarget) concurrent(workers, each int) error {
	var (
		mu   sync.Mutex
		all  []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				d, err := tg.do(context.Background())
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					all = append(all, d)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	tg.concWall += time.Since(start)
	tg.conc = append(tg.conc, all...)
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// tokenRequest returns a client_credentials grant for c at h (basic auth,
// keep-alive), timed from sending to the last byte of a 200 with a token.
func tokenRequest(h *hydra, c hydraClient, scopes, aud []string) func(context.Context) (time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {strings.Join(scopes, " ")}}
	if len(aud) > 0 {
		form.Set("audience", strings.Join(aud, " "))
	}
	body := form.Encode()
	return func(ctx context.Context) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.issuer+"/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
		start := time.Now()
		resp, err := h.client.Do(req)
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"access_token"`)) {
			return 0, fmt.Errorf("token: %s: %.300s", resp.Status, b)
		}
		return d, nil
	}
}

// postHook POSTs body to the hook's /hooks/hydra as Hydra sends it (api
// key header, keep-alive) and returns the answer of a 200, timed to its
// last byte.
func postHook(ctx context.Context, st *stack, body []byte) ([]byte, time.Duration, error) {
	return postHookURL(ctx, st.client, st.hookURL(), st.hookKey, body)
}

// postHookURL is postHook to any hook at url.
func postHookURL(ctx context.Context, client *http.Client, url, key string, body []byte) ([]byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set(hookHeader, key)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(minterClaim)) {
		return nil, 0, fmt.Errorf("hook: %s: %.300s", resp.Status, b)
	}
	return b, d, nil
}

// cpuTime is the user and system CPU time of process pid from /proc
// (Linux): 0 for pid 0, -1 where it cannot be read.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The fields after the command name (which may hold spaces) start with
	// the state (field 3); utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	var total time.Duration
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return -1
		}
		total += time.Duration(v) * time.Second / benchClockTicks
	}
	return total
}

// pct is the p-th percentile of ds (nearest rank).
func benchPct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func benchSum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

func benchMean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return benchSum(ds) / time.Duration(len(ds))
}

func benchMS(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

func benchKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// authLine is the bytes of "Authorization: Bearer <token>\r\n".
func authLine(tok string) int { return len("Authorization: Bearer ") + len(tok) + 2 }
