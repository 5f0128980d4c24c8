package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The API that the exchange journey adds to the catalog after tokens were
// minted, and the exchange client its sidecar authenticates as.
const (
	reportsAudience = "https://reports.internal"
	reportsScope    = "reports:read"
	reportsClient   = "reports-sidecar"
	// reportsHCL is written into the copied configuration once the old
	// tokens exist: the API, and who may obtain its tokens by exchange.
	reportsHCL = `api "reports" {
  audience = "https://reports.internal"
  scopes   = ["reports:read"]
  claims   = ["tenant"]
  lifetime = "5m"
}

exchange_client "reports-sidecar" {
  secret    = env("REPORTS_SIDECAR_SECRET")
  audiences = ["https://reports.internal"]
}
`
	// latencyN is how many sequential requests each latency measurement
	// sends; medians are reported.
	latencyN = 41
)

// addReports adds the reports API and its exchange client to the copied
// configuration and reloads the hook with SIGHUP, waiting until it has
// loaded a configuration since (a file change triggers a reload too).
func addReports(t *testing.T, st *stack) {
	t.Helper()
	metrics := "http://" + st.hookAddr.admin + "/metrics"
	const reloaded = `embedtoken_hook_reloads_total{result="ok"}`
	before := scrape(t, st.client, metrics, reloaded)
	st.addFile(t, "reports.hcl", reportsHCL)
	if err := st.hook.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP to the hook: %v", err)
	}
	waitCond(t, 15*time.Second, "hook reload", func() bool { return scrape(t, st.client, metrics, reloaded) > before })
}

// startReports writes sidecars/<name>.hcl, a sidecar for the reports API
// (the shipped profile sidecar renamed) followed by extra (an exchange
// block, or nothing), and starts it in front of a new service.
func startReports(t *testing.T, st *stack, name, extra string) (*service, *sidecar) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(st.dir, "sidecars", "profile.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	st.addFile(t, filepath.Join("sidecars", name+".hcl"), replaceAll(t, string(src), `"profile"`, `"reports"`)+extra)
	svc := newService(t, name)
	return svc, st.startSidecar(t, name, svc.srv.URL)
}

// exchangeBlock is a sidecar's exchange block whose secret is read from the
// environment variable secretEnv.
func exchangeBlock(st *stack, secretEnv string) string {
	return fmt.Sprintf(`
exchange {
  token_url = "http://%s/oauth2/token"
  client_id = %q
  secret    = env(%q)
}
`, st.hookAddr.public, reportsClient, secretEnv)
}

// getAt sends GET path to a sidecar with a Bearer token.
func getAt(t *testing.T, client *http.Client, sc *sidecar, path, token string) (response, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, sc.url(path), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s sidecar: %v", sc.api, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r := response{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), body: b}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(b, &e) == nil {
		r.errCode, r.errDesc = e.Error, e.Description
	}
	return r, resp.Header
}

// TestExchangeJourney: an API added to the catalog after a token was
// minted. With an exchange block, its sidecar serves the old token with a
// freshly exchanged inner token carrying act; without one, 401 renew; with
// a wrong client secret, 503 (the client's token is fine). It also
// measures what an exchange adds to a request.
func TestExchangeJourney(t *testing.T) {
	st := newStack(t, stackOptions{})
	st.setEnv("REPORTS_SIDECAR_SECRET="+randomHex(t, 24), "REPORTS_WRONG_SECRET="+randomHex(t, 24))
	st.startHook(t)

	subj := devSubject
	subj.granted = append([]string{reportsScope}, devSubject.granted...)
	// Tokens minted while the catalog has no reports API: none embeds a
	// reports token, though their scope covers it.
	olds := make([]string, latencyN+2)
	for i := range olds {
		olds[i] = mintOuter(t, st, subj, "")
	}
	old := olds[0]
	if _, ok := decodeJWT(t, old).embedded(minterClaim)["reports"]; ok {
		t.Fatal("a token minted before the reports API embeds a reports token")
	}

	addReports(t, st)
	svc, sc := startReports(t, st, "reports", exchangeBlock(st, "REPORTS_SIDECAR_SECRET"))
	plainSvc, plain := startReports(t, st, "reports-plain", "")
	badSvc, bad := startReports(t, st, "reports-badsecret", exchangeBlock(st, "REPORTS_WRONG_SECRET"))
	keys := fetchJWKS(t, st.client, st.jwksURL())
	scMetrics := "http://" + sc.admin + "/metrics"

	t.Run("exchange serves the old token", func(t *testing.T) {
		r, _ := getAt(t, st.client, sc, "/reports/1", old)
		if r.status != http.StatusOK {
			t.Fatalf("old token at the reports sidecar with exchange: got %d %s, want 200", r.status, r.body)
		}
		rec := svc.one(t)
		checkExchanged(t, rec, old, decodeJWT(t, old).time("exp"), subj, keys)
		// Again: the exchanged token is cached, not exchanged twice.
		if r, _ := getAt(t, st.client, sc, "/reports/2", old); r.status != http.StatusOK {
			t.Fatalf("second request: got %d, want 200", r.status)
		}
		if again := svc.one(t); again.Token != rec.Token {
			t.Error("a second request with the same token got another exchanged token: the result is not cached")
		}
		if n := scrape(t, st.client, scMetrics, `embedtoken_sidecar_exchanges_total{outcome="ok"}`); n != 1 {
			t.Errorf("exchanges: %v, want 1", n)
		}
	})

	t.Run("without an exchange block: renew", func(t *testing.T) {
		r, _ := getAt(t, st.client, plain, "/reports/1", old)
		if r.status != http.StatusUnauthorized || r.errCode != "invalid_token" || !strings.Contains(strings.ToLower(r.errDesc), "renew") {
			t.Errorf("got %d %q %q, want 401 invalid_token asking to renew", r.status, r.errCode, r.errDesc)
		}
		if !strings.HasPrefix(r.challenge, "Bearer ") || !strings.Contains(r.challenge, `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate %q, want a Bearer invalid_token challenge", r.challenge)
		}
		plainSvc.none(t)
		// A renewed token embeds reports: no exchange needed, no act.
		fresh := mintOuter(t, st, subj, "")
		if r, _ := getAt(t, st.client, plain, "/reports/1", fresh); r.status != http.StatusOK {
			t.Fatalf("renewed token: got %d %s, want 200", r.status, r.body)
		}
		got := plainSvc.one(t).Token
		if want := decodeJWT(t, fresh).embedded(minterClaim)["reports"]; got != want {
			t.Error("the service did not receive the renewed token's embedded reports token")
		}
		if _, ok := decodeJWT(t, got).claims["act"]; ok {
			t.Error("an embedded token carries act")
		}
	})

	t.Run("wrong client secret: a misconfiguration, not an outage", func(t *testing.T) {
		r, h := getAt(t, st.client, bad, "/reports/1", old)
		if r.status != http.StatusInternalServerError || r.errCode != "server_error" || !strings.Contains(r.errDesc, "misconfigured") {
			t.Errorf("got %d %q %q, want 500 server_error (the sidecar is misconfigured)", r.status, r.errCode, r.errDesc)
		}
		if h.Get("Retry-After") != "" {
			t.Error("a misconfiguration answered with Retry-After: retrying cannot help")
		}
		if strings.Contains(r.challenge, "error=") {
			t.Errorf("WWW-Authenticate %q: the client's token is not at fault", r.challenge)
		}
		badSvc.none(t)
		hookMetrics := "http://" + st.hookAddr.admin + "/metrics"
		if n := scrape(t, st.client, hookMetrics, `embedtoken_exchange_requests_total{outcome="invalid_client"}`); n < 1 {
			t.Errorf("the hook counted %v invalid_client exchanges, want at least 1", n)
		}
		badMetrics := "http://" + bad.admin + "/metrics"
		if n := scrape(t, st.client, badMetrics, `embedtoken_sidecar_exchange_failures_total{reason="invalid_client"}`); n < 1 {
			t.Errorf("the sidecar counted %v invalid_client exchange failures, want at least 1", n)
		}
		resp, err := st.client.Get("http://" + bad.admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "refused the exchange client") {
			t.Errorf("/readyz of the misconfigured sidecar: %d %q, want 503 saying the exchange client was refused", resp.StatusCode, body)
		}
		if logs := bad.p.log(); !strings.Contains(logs, `"level":"error"`) || !strings.Contains(logs, "token exchange client refused") {
			t.Errorf("no error line about the refused exchange client in the sidecar's log")
		}
	})

	t.Run("latency", func(t *testing.T) {
		fresh := make([]string, latencyN+1)
		for i := range fresh {
			fresh[i] = mintOuter(t, st, subj, "")
		}
		url := sc.url("/reports/1")
		// Connections up, and one token of each kind already verified.
		timeRequests(t, st.client, url, []string{fresh[0], olds[1]})
		before := scrape(t, st.client, scMetrics, `embedtoken_sidecar_exchanges_total{outcome="ok"}`)
		ss := measure(t, st.client,
			&series{name: "embedded cold", url: url, tokens: fresh[1:]},
			&series{name: "embedded cached", url: url, tokens: repeat(fresh[0], latencyN)},
			&series{name: "exchange cold", url: url, tokens: olds[2:]},
			&series{name: "exchange cached", url: url, tokens: repeat(olds[1], latencyN)})
		svc.take()
		if n := scrape(t, st.client, scMetrics, `embedtoken_sidecar_exchanges_total{outcome="ok"}`) - before; n != latencyN {
			t.Errorf("exchanges during the measurement: %v, want %d (one per new token)", n, latencyN)
		}
		logLatencies(t, "exchange (reports sidecar, development issuer)", ss, "exchange cold", "embedded cold", "exchange cached", "embedded cached")
	})

	st.stopAll(t)
}

// checkExchanged checks the token the reports service received for an
// outer token that embeds none: verified with the minter's keys, for
// reports only, narrowed like an embedded one, with act naming the
// exchange client, never outliving the outer token (which expires at
// outerExp).
func checkExchanged(t *testing.T, rec received, outer string, outerExp time.Time, subj subject, keys jose.JSONWebKeySet) {
	t.Helper()
	for name, vs := range rec.Header {
		for _, v := range vs {
			if strings.Contains(v, outer) {
				t.Errorf("header %s carries the outer token", name)
			}
		}
	}
	j := verifyJWT(t, rec.Token, keys, jose.EdDSA)
	if typ, _ := j.header["typ"].(string); !strings.EqualFold(typ, "at+jwt") {
		t.Errorf("typ %q, want at+jwt", typ)
	}
	if aud, ok := j.claims["aud"].(string); !ok || aud != reportsAudience {
		t.Errorf("aud %v, want the single string %q", j.claims["aud"], reportsAudience)
	}
	if j.str("iss") != minterIssuer || j.str("sub") != subj.sub || j.str("client_id") != subj.clientID {
		t.Errorf("iss %q sub %q client_id %q, want %q %q %q", j.str("iss"), j.str("sub"), j.str("client_id"), minterIssuer, subj.sub, subj.clientID)
	}
	if j.str("scope") != reportsScope {
		t.Errorf("scope %q, want %q", j.str("scope"), reportsScope)
	}
	if act, _ := j.claims["act"].(map[string]any); !reflect.DeepEqual(act, map[string]any{"sub": reportsClient}) {
		t.Errorf("act %v, want {\"sub\": %q}", j.claims["act"], reportsClient)
	}
	// The declared claim, copied from the subject token; nothing else.
	if want, _ := subj.claims["tenant"].(string); j.str("tenant") != want {
		t.Errorf("tenant %q, want %q", j.str("tenant"), want)
	}
	allowed := append(slices.Clone(registeredInner), "tenant", "act")
	for k := range j.claims {
		if !slices.Contains(allowed, k) {
			t.Errorf("undeclared claim %q", k)
		}
	}
	exp, iat := j.time("exp"), j.time("iat")
	if exp.After(outerExp) || exp.Sub(iat) > 5*time.Minute || !exp.After(time.Now()) {
		t.Errorf("exp %v (iat %v): want after now, within 5m of iat and not after the outer token's %v", exp, iat, outerExp)
	}
}

// timeRequests sends one GET to url per token, in sequence, and returns
// each one's duration; every answer must be 200.
func timeRequests(t *testing.T, client *http.Client, url string, tokens []string) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, len(tokens))
	for i, tok := range tokens {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %s, want 200", i, resp.Status)
		}
		out = append(out, d)
	}
	return out
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// series is one kind of request of a latency measurement.
type series struct {
	name   string
	url    string
	tokens []string // one request per token
	d      []time.Duration
}

// measure sends the requests of every series interleaved (the first of
// each, then the second of each...), so that a shared machine's drift
// touches every series alike, and records their durations.
func measure(t *testing.T, client *http.Client, ss ...*series) map[string]*series {
	t.Helper()
	out := make(map[string]*series, len(ss))
	for i := 0; ; i++ {
		more := false
		for _, s := range ss {
			if i < len(s.tokens) {
				more = true
				s.d = append(s.d, timeRequests(t, client, s.url, s.tokens[i:i+1])...)
			}
		}
		if !more {
			break
		}
	}
	for _, s := range ss {
		out[s.name] = s
	}
	return out
}

// logLatencies logs the median of each pair's first series and what it
// adds to the second's.
func logLatencies(t *testing.T, what string, ss map[string]*series, pairs ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: medians of %d sequential requests each, interleaved, through the real processes:", what, latencyN)
	for i := 0; i+1 < len(pairs); i += 2 {
		x, base := median(ss[pairs[i]].d), median(ss[pairs[i+1]].d)
		fmt.Fprintf(&b, "\n  %-22s %9s   %-22s %9s   added %+v", pairs[i], x.Round(time.Microsecond),
			pairs[i+1], base.Round(time.Microsecond), (x - base).Round(time.Microsecond))
	}
	t.Log(b.String())
}

// scrape returns the value of one series (its name and labels exactly as
// exposed, e.g. `x_total{outcome="ok"}`) at a Prometheus text endpoint; 0
// when absent.
func scrape(t *testing.T, client *http.Client, url, series string) float64 {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return v
		}
	}
	return 0
}

// waitCond polls cond every 100 ms until it holds, or fails t after d.
func waitCond(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
