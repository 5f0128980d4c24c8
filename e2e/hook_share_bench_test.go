package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The bounds of TestBenchHookShare.
const (
	shareRounds = 12
	shareBatch  = 40 // requests per target per round
	shareBudget = 90 * time.Second
)

// TestBenchHookShare measures embedtoken's share of a Hydra token hook call
// without Hydra: the body Hydra v2.3.0 sends (the shared sample, granting
// every scope of the shipped catalog) POSTed to `embedtoken hook` and to
// hookstub, a separate process that answers the hook's answer without
// minting, each back to back and paced once per 13 ms as Hydra calls it
// (each call then wakes an idle process), in batches interleaved round by
// round (the order reversed every round). The hook's round trip minus the
// stub's is the time embedtoken's work adds to Hydra's call; the CPU per
// call of both processes comes from /proc. It logs a table; it fails only
// when something does not work.
func TestBenchHookShare(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped under -short")
	}
	if os.Getenv(envBench) != "1" {
		t.Skipf("e2e: set %s=1 to run the benchmarks", envBench)
	}
	body := hydraSampleAllScopes(t)
	st := newStack(t, stackOptions{})
	st.startHook(t)
	answer, _, err := postHook(context.Background(), st, body)
	if err != nil {
		t.Fatalf("POST /hooks/hydra with Hydra's sample body: %v", err)
	}
	stub := startHookStub(t, st.hookKey, answer)
	hook := func(ctx context.Context) (time.Duration, error) {
		_, d, err := postHook(ctx, st, body)
		return d, err
	}
	stubbed := func(ctx context.Context) (time.Duration, error) {
		_, d, err := postHookURL(ctx, st.client, stub.url, st.hookKey, body)
		return d, err
	}
	paced := func(do func(context.Context) (time.Duration, error)) func(context.Context) (time.Duration, error) {
		return func(ctx context.Context) (time.Duration, error) {
			time.Sleep(benchHookPace)
			return do(ctx)
		}
	}
	hookPID := st.hook.cmd.Process.Pid
	targets := []*benchTarget{
		{name: "hook, back to back", do: hook, hookPID: hookPID},
		{name: "stub, back to back", do: stubbed, hookPID: stub.pid},
		{name: "hook, one per 13 ms", do: paced(hook), hookPID: hookPID},
		{name: "stub, one per 13 ms", do: paced(stubbed), hookPID: stub.pid},
	}
	for _, tg := range targets {
		for i := range benchWarmup {
			if _, err := tg.do(context.Background()); err != nil {
				t.Fatalf("%s: warm-up request %d: %v", tg.name, i, err)
			}
		}
	}
	pairs := [][2]*benchTarget{{targets[0], targets[1]}, {targets[2], targets[3]}}
	shares := map[*benchTarget][]time.Duration{}
	start := time.Now()
	rounds := 0
	for r := 0; r < shareRounds && time.Since(start) < shareBudget; r++ {
		order := slices.Clone(targets)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		batch := map[*benchTarget][]time.Duration{}
		for _, tg := range order {
			d, err := tg.sequential(shareBatch)
			if err != nil {
				t.Fatalf("round %d: %s: %v", r, tg.name, err)
			}
			batch[tg] = d
		}
		for _, p := range pairs {
			shares[p[0]] = append(shares[p[0]], median(batch[p[0]])-median(batch[p[1]]))
		}
		rounds++
	}

	var b strings.Builder
	fmt.Fprintf(&b, "POST /hooks/hydra with Hydra v2.3.0's body (every scope of the shipped catalog: 5 EdDSA tokens), loopback, %d CPUs\n", runtime.NumCPU())
	fmt.Fprintf(&b, "%d rounds x %d requests per target, interleaved (order reversed every round), %s; latency and CPU in ms\n\n", rounds, shareBatch, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(&b, "%-22s %4s %6s %6s %6s %6s %8s\n", "", "n", "p50", "p90", "p99", "mean", "CPU/req")
	for _, tg := range targets {
		fmt.Fprintf(&b, "%-22s %4d %6s %6s %6s %6s %8s\n", tg.name, len(tg.seq), benchMS(benchPct(tg.seq, 50)), benchMS(benchPct(tg.seq, 90)),
			benchMS(benchPct(tg.seq, 99)), benchMS(benchMean(tg.seq)), tg.cpuPerReq(tg.hookCPU, tg.hookPID))
	}
	fmt.Fprintf(&b, "(CPU per request from /proc/<pid>/stat, 10 ms ticks summed over the batches)\n\n")
	for _, p := range pairs {
		d := slices.Clone(shares[p[0]])
		slices.Sort(d)
		fmt.Fprintf(&b, "embedtoken's share, %-26s p50 %+.2f ms, p90 %+.2f ms, p99 %+.2f ms; rounds' median differences %+.2f..%+.2f (median %+.2f)\n",
			strings.TrimPrefix(p[0].name, "hook, ")+":",
			float64(benchPct(p[0].seq, 50)-benchPct(p[1].seq, 50))/1e6, float64(benchPct(p[0].seq, 90)-benchPct(p[1].seq, 90))/1e6,
			float64(benchPct(p[0].seq, 99)-benchPct(p[1].seq, 99))/1e6, float64(d[0])/1e6, float64(d[len(d)-1])/1e6, float64(median(d))/1e6)
	}
	t.Log("\n" + b.String())
}

// hydraSampleAllScopes is the token hook body of the shared Hydra v2.3.0
// sample (mint/testdata's copy when the shared folder is absent), granting
// every scope of the shipped catalog.
func hydraSampleAllScopes(t *testing.T) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(repoRoot, "..", "shared", "samples", "hydra-v2.3.0", "token-hook-request.client_credentials.json"))
	if err != nil {
		body, err = os.ReadFile(filepath.Join(repoRoot, "mint", "testdata", "hydra-client-credentials.json"))
	}
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(body, []byte(`"granted_scopes"`))
	if i < 0 {
		t.Fatal("the sample has no granted_scopes")
	}
	j := i + bytes.IndexByte(body[i:], ']')
	granted := `"granted_scopes": ["` + strings.Join(hydraAllowed, `", "`) + `"]`
	out := append(append(append([]byte{}, body[:i]...), granted...), body[j+1:]...)
	// Hydra's expiry: an hour from now, as for a fresh token.
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	k := bytes.Index(out, []byte(`"access_token": "`))
	if k < 0 {
		t.Fatal("the sample has no expires_at.access_token")
	}
	k += len(`"access_token": "`)
	e := k + bytes.IndexByte(out[k:], '"')
	return append(append(append([]byte{}, out[:k]...), exp...), out[e:]...)
}

// hookStub is e2e/bench/cmd/hookstub running: a hook process answering
// every call with the same bytes.
type hookStub struct {
	url string
	pid int
}

// startHookStub builds and starts hookstub answering answer to calls
// with key, and waits until it is ready.
func startHookStub(t *testing.T, key string, answer []byte) *hookStub {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "hookstub")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./e2e/bench/cmd/hookstub")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build hookstub: %v\n%s", err, out)
	}
	file := filepath.Join(dir, "answer.json")
	writeFile(t, file, string(answer))
	addr := freeAddrs(t, 1)[0]
	p := startOwned(t, t, "hookstub", baseEnv("HOOKSTUB_KEY="+key), bin, addr, hookHeader, file)
	p.waitHTTP(t, "http://"+addr+"/readyz")
	return &hookStub{url: "http://" + addr + "/hooks/hydra", pid: p.cmd.Process.Pid}
}
