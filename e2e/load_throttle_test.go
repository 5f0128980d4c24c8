package e2e

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestLoadExchangeThrottleSpread: failed client authentications spread
// over more source addresses (127.x.y.z) than the address table holds. The
// per-address table stays bounded, a declared client's guesses stay
// bounded by its client id's window, and a client at an address that never
// failed is not locked out by the spread.
func TestLoadExchangeThrottleSpread(t *testing.T) {
	issuer := newKeyServer(t, &advKey{kid: "hydra-1", alg: jose.RS256, priv: rsaKey(0)})
	st := newStack(t, stackOptions{HydraIssuer: "http://" + issuer.addr})
	secret := randomHex(t, 24)
	st.setEnv("REPORTS_SIDECAR_SECRET=" + secret)
	st.addFile(t, "reports.hcl", reportsHCL)
	st.startHook(t)
	_, port, _ := net.SplitHostPort(st.hookAddr.public)
	basicAuth := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	// post sends one exchange request from src (127.x.y.z) on a new
	// connection and returns the status.
	post := func(src net.IP, id, secret string) int {
		d := &net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DialContext: d.DialContext, DisableKeepAlives: true}}
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+port+"/oauth2/token",
			strings.NewReader("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basicAuth(id, secret))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("from %s: %v", src, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	addr := func(i int) net.IP { return net.IPv4(127, byte(1+i>>16), byte(i>>8), byte(i)) }

	const spread = 10000 + 20 // the address table holds 10000
	start := time.Now()
	codes := map[int]int{}
	for i := range spread {
		codes[post(addr(i), "nobody", "wrong")]++
	}
	took := time.Since(start)
	hwm := procStatus(st.hook.cmd.Process.Pid, "VmHWM")
	// A declared client, right secret, from an address that never failed:
	// past the throttle (400: the form has no subject token), not 429.
	fresh := post(net.IPv4(127, 250, 0, 1), reportsClient, secret)
	// Its guesses stay bounded: 10 wrong secrets from 10 new addresses,
	// then 429 for the client id wherever it comes from.
	guesses := map[int]int{}
	for i := range 12 {
		guesses[post(net.IPv4(127, 251, 0, byte(1+i)), reportsClient, "wrong")]++
	}
	if fresh == http.StatusTooManyRequests {
		t.Errorf("after failures from %d addresses, a declared client with the right secret from a new address got 429: locked out", spread)
	}
	if guesses[http.StatusUnauthorized] != 10 || guesses[http.StatusTooManyRequests] != 2 {
		t.Errorf("12 wrong secrets for one client id from 12 new addresses: %v, want 10 401 then 429", guesses)
	}
	t.Logf("%d failures from %d addresses in %s: %v; hook VmHWM %d kB; then the right secret from a new address: %d; 12 wrong secrets for the client id: %v",
		spread, spread, took.Round(time.Millisecond), codes, hwm, fresh, guesses)
	st.stopAll(t)
}
