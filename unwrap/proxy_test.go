package unwrap

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
	"time"
)

func TestUpstreamDown(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.Close()
	rec := e.get("/orders/1", e.outer())
	checkFail(t, e, rec, wantFail{status: 502, code: codeBadGateway, reason: ReasonUpstreamRefused})
}

func TestUpstreamSlow(t *testing.T) {
	e := newEnv(t, envOpts{})
	release := make(chan struct{})
	defer close(release)
	e.up.handle = func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(2 * time.Second):
		}
	}
	rec := e.get("/orders/1", e.outer())
	checkFail(t, e, rec, wantFail{status: 504, code: codeGatewayTimeout, reason: ReasonUpstreamTimeout})
}

// serveSidecar runs the sidecar on a real listener with the header limit.
func serveSidecar(t *testing.T, e *env) string {
	srv := httptest.NewUnstartedServer(e.sc.Handler())
	srv.Config.MaxHeaderBytes = e.sc.ListenerMaxHeaderBytes()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestWebsocketUpgradePasses(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.handle = func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo " + line)
		_ = brw.Flush()
	}
	addr := serveSidecar(t, e)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tok := e.outer()
	fmt.Fprintf(conn, "GET /orders/ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", tok)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	fmt.Fprintf(conn, "hello\n")
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || line != "echo hello\n" {
		t.Fatalf("got %q, %v", line, err)
	}
	if a := e.up.last(t).Header.Get("Authorization"); a == "Bearer "+tok || !strings.HasPrefix(a, "Bearer ") {
		t.Error("upgrade forwarded without the inner token")
	}
}

func TestH2CUpgradeRefused(t *testing.T) {
	e := newEnv(t, envOpts{})
	h := http.Header{}
	h.Set("Authorization", "Bearer "+e.outer())
	h.Set("Connection", "Upgrade, HTTP2-Settings")
	h.Set("Upgrade", "h2c")
	h.Set("HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA")
	if rec := e.do(http.MethodGet, "/orders/1", h); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	got := e.up.last(t)
	if got.Header.Get("Upgrade") != "" || got.Header.Get("Http2-Settings") != "" {
		t.Errorf("h2c upgrade forwarded: %v", got.Header)
	}
}

// TestHeaderBlockTooLarge: a header block over max_token_bytes + 8 KiB is
// 431 with a JSON body and the request id, exactly at the limit; a block
// at the limit passes on to token checks (401 here: no token).
func TestHeaderBlockTooLarge(t *testing.T) {
	e := newEnv(t, envOpts{})
	addr := serveSidecar(t, e)
	limit := e.sc.MaxHeaderBytes()
	// A raw request, so that its head is exactly as long as counted.
	head := func(pad int) string {
		return "GET /orders/1 HTTP/1.1\r\nHost: " + addr + "\r\nX-Pad: " + strings.Repeat("a", pad) + "\r\nConnection: close\r\n\r\n"
	}
	base := len(head(0))
	for _, tc := range []struct {
		pad  int
		want int
	}{
		{limit - base, http.StatusUnauthorized},
		{limit - base + 1, http.StatusRequestHeaderFieldsTooLarge},
		{limit + 5000, http.StatusRequestHeaderFieldsTooLarge},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, head(tc.pad))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		c.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("head of %d bytes (limit %d): status %d, want %d", base+tc.pad, limit, resp.StatusCode, tc.want)
			continue
		}
		if tc.want == http.StatusRequestHeaderFieldsTooLarge {
			var b struct {
				Error     string `json:"error"`
				RequestID string `json:"request_id"`
			}
			if json.Unmarshal(body, &b) != nil || b.Error != "request_header_fields_too_large" || b.RequestID == "" || resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("431 body %q", body)
			}
		}
	}
}

func TestStreamingPasses(t *testing.T) {
	e := newEnv(t, envOpts{})
	release := make(chan struct{})
	e.up.handle = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "data: second\n\n")
	}
	addr := serveSidecar(t, e)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/orders/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.outer())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "second") {
		t.Errorf("rest: %q", rest)
	}
}

func TestRewriteDropsTrailersNamingAuthorization(t *testing.T) {
	e := newEnv(t, envOpts{})
	in := httptest.NewRequest(http.MethodPost, "/orders/1", strings.NewReader("x"))
	in = in.WithContext(withInfo(in.Context(), &requestInfo{id: "r1", authz: "Bearer a.b.c"}))
	out := in.Clone(in.Context())
	out.Trailer = http.Header{"Authorization": nil, "X-Forwarded-For": nil, "X-Checksum": nil}
	e.sc.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	if _, ok := out.Trailer["Authorization"]; ok {
		t.Error("trailer Authorization kept")
	}
	if _, ok := out.Trailer["X-Forwarded-For"]; ok {
		t.Error("trailer X-Forwarded-For kept")
	}
	if _, ok := out.Trailer["X-Checksum"]; !ok {
		t.Error("ordinary trailer dropped")
	}
	if out.Header.Get("Authorization") != "Bearer a.b.c" {
		t.Error("inner token not injected")
	}
}

// TestNoTokenInLogs runs successes and failures of every kind with debug
// logging and checks that no entry holds a token or a signature.
func TestNoTokenInLogs(t *testing.T) {
	e := newEnv(t, envOpts{})
	var secrets []string
	send := func(tok string) {
		secrets = append(secrets, tok)
		if parts := strings.Split(tok, "."); len(parts) == 3 && len(parts[2]) > 8 {
			secrets = append(secrets, parts[1], parts[2])
		}
		e.get("/orders/1", tok)
	}
	m := e.chain()
	for _, v := range m {
		secrets = append(secrets, v.(string), strings.Split(v.(string), ".")[2])
	}
	send(e.outer())
	send(e.outer()) // cache hit
	c := e.outerClaims(m)
	c["exp"] = t0.Add(-time.Hour).Unix()
	send(sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c))
	attacker := &signingKey{kid: "idp-1", alg: e.idpKey.alg, priv: testRSA(2)}
	send(sign(attacker, hdr(attacker, "at+jwt"), e.outerClaims(m)))
	bad := e.mintInner(e.innerClaims("https://orders.test", "", -time.Hour))
	m2 := e.chain()
	m2["orders"] = bad
	secrets = append(secrets, bad)
	send(sign(e.idpKey, hdr(e.idpKey, "at+jwt"), e.outerClaims(m2)))
	send("garbage-token-value-1234567890")
	send(strings.Repeat("A", 20000))
	e.up.Close()
	send(e.outer())
	send(m["orders"].(string))

	entries := e.logs.All()
	if len(entries) < 5 {
		t.Fatalf("only %d log entries", len(entries))
	}
	for _, en := range entries {
		text := en.Message + " " + fieldsText(en.Context)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Fatalf("log entry %q holds token text", en.Message)
			}
		}
	}
}

// TestClientBodyErrorIsNotAnUpstreamFailure: a request whose chunked body
// is malformed (a chunk size that overflows) is the client's fault: 400
// invalid_request with the connection closed, counted as a bad request,
// never 502 bad_gateway.
func TestClientBodyErrorIsNotAnUpstreamFailure(t *testing.T) {
	e := newEnv(t, envOpts{})
	srv := httptest.NewServer(e.sc.Handler())
	defer srv.Close()
	outer := e.outer()
	for _, body := range []string{"ffffffffffffffffff1\r\nx\r\n0\r\n\r\n", "5\r\nab"} {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		req := "POST /orders/1 HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer " + outer + "\r\nTransfer-Encoding: chunked\r\n\r\n" + body
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		if cw, ok := c.(*net.TCPConn); ok && strings.HasSuffix(body, "ab") {
			_ = cw.CloseWrite() // the body ends early
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		c.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"invalid_request"`) {
			t.Errorf("body %q: status %d, body %s; want 400 invalid_request", body[:4], resp.StatusCode, b)
		}
		if !resp.Close {
			t.Errorf("body %q: connection kept open", body[:4])
		}
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_request"`) {
			t.Errorf("body %q: challenge %q", body[:4], ch)
		}
	}
	if !e.reasonLogged(ReasonBadBody) {
		t.Error("reason bad_request_body not logged")
	}
	if n := counterValue(t, e.reg, "embedtoken_sidecar_requests_total", map[string]string{"outcome": outcomeUpstream, "reason": string(ReasonUpstreamRefused)}); n != 0 {
		t.Errorf("%v requests counted as upstream failures", n)
	}
	if n := counterValue(t, e.reg, "embedtoken_sidecar_requests_total", map[string]string{"outcome": outcomeBadRequest, "reason": string(ReasonBadBody)}); n != 2 {
		t.Errorf("%v requests counted as bad bodies, want 2", n)
	}
}
