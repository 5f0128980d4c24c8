package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file holds the adversarial tests of issue 15: requests that the
// sidecar and the service behind it could read differently (percent-encoded
// paths, HEAD for GET, bodies an upstream leaves unread), against a Go
// ServeMux upstream and a naive HTTP/1.1 upstream that parses requests off
// the connection the way Python's http.server does.

// dispatchRoutes adds a GET route to the fixture's POST|DELETE
// /orders/admin: reading the report needs orders:write too.
const dispatchRoutes = `
  route {
    path_prefix = "/orders/report"
    methods     = ["GET"]
    scopes      = ["orders:write"]
  }`

// muxUpstream is a Go ServeMux with handlers for the protected routes; it
// records the pattern of every handler it ran.
type muxUpstream struct {
	srv *http.Server
	url string

	mu  sync.Mutex
	ran []string
}

func newMuxUpstream(t *testing.T) *muxUpstream {
	t.Helper()
	u := &muxUpstream{}
	mux := http.NewServeMux()
	for _, p := range []string{"POST /orders/admin", "POST /orders/admin/", "DELETE /orders/admin", "DELETE /orders/admin/",
		"GET /orders/report", "GET /orders/report/", "/"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			u.mu.Lock()
			u.ran = append(u.ran, r.Method+" "+r.Pattern)
			u.mu.Unlock()
			_, _ = io.WriteString(w, "mux "+r.Pattern)
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	u.url = "http://" + ln.Addr().String()
	go func() { _ = u.srv.Serve(ln) }()
	t.Cleanup(func() { _ = u.srv.Close() })
	return u
}

func (u *muxUpstream) handlers() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.ran...)
}

// naiveRequest is one request a naiveUpstream executed.
type naiveRequest struct {
	line string // the request line
	path string // unquoted, as Python's urllib.parse.unquote does
	auth string // the Authorization header
	body string // read for POST, PUT and PATCH only
}

// naiveUpstream is an HTTP/1.1 server written on a raw listener as naive
// servers are: it reads requests off a kept-alive connection one after the
// other, reads a body only for POST, PUT and PATCH (by Content-Length; it
// knows nothing of chunked), and closes only on Connection: close. Python's
// http.server with do_GET handlers behaves so. It answers every request with
// its request line, so that a client sees whose answer it got. For the
// path /unsolicited it then writes a second, unrequested response.
type naiveUpstream struct {
	ln  net.Listener
	url string

	mu    sync.Mutex
	ran   []naiveRequest
	conns []net.Conn
}

func newNaiveUpstream(t *testing.T) *naiveUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &naiveUpstream{ln: ln, url: "http://" + ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns = append(u.conns, c)
			u.mu.Unlock()
			go u.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		defer u.mu.Unlock()
		for _, c := range u.conns {
			c.Close()
		}
	})
	return u
}

func (u *naiveUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		words := strings.Fields(line)
		if len(words) != 3 {
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return
		}
		h := map[string]string{}
		for {
			hl, err := br.ReadString('\n')
			if err != nil {
				return
			}
			hl = strings.TrimRight(hl, "\r\n")
			if hl == "" {
				break
			}
			k, v, _ := strings.Cut(hl, ":")
			h[strings.ToLower(k)] = strings.TrimSpace(v)
		}
		req := naiveRequest{line: line, auth: h["authorization"]}
		if p, err := url.PathUnescape(strings.SplitN(words[1], "?", 2)[0]); err == nil {
			req.path = p
		} else {
			req.path = words[1]
		}
		// /orders/early answers without reading the body, as a Python
		// handler that refuses a POST early (send_response(403)) does.
		early := strings.HasPrefix(words[1], "/orders/early")
		switch words[0] {
		case "POST", "PUT", "PATCH":
			if early {
				break
			}
			n, _ := strconv.Atoi(h["content-length"])
			body := make([]byte, n)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			req.body = string(body)
		}
		u.mu.Lock()
		u.ran = append(u.ran, req)
		u.mu.Unlock()
		answer, status := "naive "+words[0]+" "+words[1], "200 OK"
		if early {
			status = "403 Forbidden"
		}
		resp := fmt.Sprintf("HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", status, len(answer), answer)
		if words[1] == "/unsolicited" {
			resp += "HTTP/1.1 200 OK\r\nX-Upstream-Secret: unsolicited-secret-bytes\r\nContent-Length: 0\r\n\r\n"
		}
		if _, err := io.WriteString(c, resp); err != nil {
			return
		}
		if strings.EqualFold(h["connection"], "close") {
			return
		}
	}
}

func (u *naiveUpstream) requests() []naiveRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]naiveRequest(nil), u.ran...)
}

// rawExchange sends one request written by hand on a new connection to
// addr and reads the answer.
func rawExchange(t *testing.T, addr, method, target string, header []string, body string) answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: orders.test\r\n", method, target)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return readAnswer(resp)
}

// TestAdversarialRouteEscapes: a token that grants orders:read only. No
// spelling of a protected route reaches its handler in a Go ServeMux or in a
// Python-style upstream that unquotes paths (issue 15, findings 1 and 2).
func TestAdversarialRouteEscapes(t *testing.T) {
	for _, kind := range []string{"Go ServeMux", "naive unquoting"} {
		t.Run(kind, func(t *testing.T) {
			mux, naive := (*muxUpstream)(nil), (*naiveUpstream)(nil)
			var upURL string
			if kind == "Go ServeMux" {
				mux = newMuxUpstream(t)
				upURL = mux.url
			} else {
				naive = newNaiveUpstream(t)
				upURL = naive.url
			}
			a := newAdv(t, advOptions{Upstream: upURL, SidecarExtra: dispatchRoutes})
			outer, _ := a.outer()
			auth := []string{"Authorization", "Bearer " + outer}
			cases := []struct {
				method, target string
				header         []string
				want           int
			}{
				{"POST", "/orders/%61dmin", nil, 400},
				{"DELETE", "/orders/%61dmin/1", nil, 400},
				{"GET", "/orders/%72eport", nil, 400},
				{"GET", "/orders/%2572eport", nil, 400},
				{"POST", "/orders/%2561dmin", nil, 400},
				{"POST", "/orders/admi%6E", nil, 400},
				{"POST", "/orders/admin%2F", nil, 400},
				{"POST", "/orders%3B/admin", nil, 400},
				{"HEAD", "/orders/report", nil, 403},
				{"GET", "/orders/report", nil, 403},
				{"POST", "/orders/admin", nil, 403},
				{"POST", "/ORDERS/ADMIN", nil, 403},
				{"post", "/orders/admin", nil, 403},
				{"PUT", "/orders/admin", []string{"X-HTTP-Method-Override", "DELETE"}, 403},
				{"POST", "/orders/1?_method=HEAD", nil, 200},
				{"PUT", "/orders/report?_method=GET", nil, 403},
				{"GET", "/orders/1", nil, 200},
				{"GET", "/orders/admin", nil, 200}, // the route is for POST and DELETE
			}
			for _, tc := range cases {
				r := rawExchange(t, a.listen, tc.method, tc.target, append(append([]string{}, auth...), tc.header...), "")
				if r.status != tc.want {
					t.Errorf("%s %s: %d, want %d (%s)", tc.method, tc.target, r.status, tc.want, r.body)
				}
			}
			if mux != nil {
				for _, h := range mux.handlers() {
					if !strings.HasSuffix(h, " /") {
						t.Errorf("the upstream ran %q", h)
					}
				}
			}
			if naive != nil {
				for _, r := range naive.requests() {
					if p := strings.ToLower(r.path); strings.HasPrefix(p, "/orders/admin") && r.line[0] != 'G' || strings.HasPrefix(p, "/orders/report") {
						t.Errorf("the upstream ran %q", r.line)
					}
				}
			}
		})
	}
}

// TestAdversarialSmuggling: bodies that a naive upstream leaves unread can
// neither run as requests of their own nor swallow another client's
// request (issue 15, finding 3).
func TestAdversarialSmuggling(t *testing.T) {
	naive := newNaiveUpstream(t)
	a := newAdv(t, advOptions{Upstream: naive.url, SidecarExtra: dispatchRoutes})
	outer, inner := a.outer()
	auth := []string{"Authorization", "Bearer " + outer}
	smuggled := func(line string, length int) string {
		return line + " HTTP/1.1\r\nHost: up\r\nContent-Length: " + strconv.Itoa(length) + "\r\n\r\n"
	}
	victim := func() {
		t.Helper()
		r := rawExchange(t, a.listen, "GET", "/orders/1", auth, "")
		if r.status != 200 || r.body != "naive GET /orders/1" {
			t.Errorf("the next client got %d %q, want its own answer", r.status, r.body)
		}
	}
	attacks := []struct {
		name, method, target string
		header               []string
		body                 string
	}{
		{"GET to a public path", "GET", "/healthz", nil, smuggled("POST /orders/admin/1", 0)},
		{"POST to a public path", "POST", "/healthz", nil, smuggled("DELETE /orders/admin/2", 0)},
		{"OPTIONS to a public path", "OPTIONS", "/healthz", nil, smuggled("POST /orders/admin/3", 0)},
		{"GET with a read token", "GET", "/orders/1", auth, smuggled("DELETE /orders/admin/4", 0)},
		{"DELETE with a read token", "DELETE", "/orders/1", auth, smuggled("GET /orders/report/5", 0)},
		{"lower-case post", "post", "/orders/1", auth, smuggled("POST /orders/admin/6", 0)},
		{"POST overridden to GET", "POST", "/orders/1", append([]string{"X-HTTP-Method-Override", "GET"}, auth...), ""},
		// An incomplete request: its body would be the next client's
		// request, inner token included.
		{"swallowing GET to a public path", "GET", "/healthz", nil, smuggled("POST /orders/swallow", 2000)},
		{"swallowing GET with a read token", "GET", "/orders/1", auth, smuggled("POST /orders/swallow", 2000)},
	}
	for _, at := range attacks {
		t.Run(at.name, func(t *testing.T) {
			body := at.body
			if body == "" {
				body = smuggled("POST /orders/admin/7", 0)
			}
			r := rawExchange(t, a.listen, at.method, at.target, at.header, body)
			if r.status != 200 {
				t.Fatalf("%s %s: %d %s", at.method, at.target, r.status, r.body)
			}
			victim()
			victim()
		})
	}
	// Chunked: the naive upstream knows nothing of it.
	t.Run("chunked POST", func(t *testing.T) {
		c, err := net.Dial("tcp", a.listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		payload := smuggled("POST /orders/admin/8", 0)
		fmt.Fprintf(c, "POST /orders/1 HTTP/1.1\r\nHost: orders.test\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", outer, len(payload), payload)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		victim()
	})
	time.Sleep(200 * time.Millisecond) // let a wrongly kept connection show what it ran
	for _, r := range naive.requests() {
		switch {
		case strings.HasPrefix(r.path, "/orders/admin"), strings.HasPrefix(r.path, "/orders/report"), r.path == "/orders/swallow":
			t.Errorf("the upstream ran the smuggled %q", r.line)
		case strings.Contains(r.body, inner), strings.Contains(r.body, "Bearer"):
			t.Errorf("a request body swallowed a client's request: %q", r.line)
		}
	}
	if strings.Contains(a.p.log(), "Unsolicited") {
		t.Error("the sidecar saw unsolicited upstream responses")
	}
}

// TestAdversarialUpstreamBytesNotLogged: Go's transport logs an unsolicited
// response on an idle connection, quoting its bytes, through the standard
// logger; the sidecar logs it as a reason only.
// diagnosticLine is a configuration diagnostic as a command prints it at start-up.
var diagnosticLine = regexp.MustCompile(`^\S+:\d+:\d+: warning: [A-Z]`)

func TestAdversarialUpstreamBytesNotLogged(t *testing.T) {
	naive := newNaiveUpstream(t)
	a := newAdv(t, advOptions{Upstream: naive.url})
	outer, _ := a.outer()
	r := rawExchange(t, a.listen, "GET", "/unsolicited", []string{"Authorization", "Bearer " + outer}, "")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(a.p.log(), "upstream_unsolicited_response") {
		if time.Now().After(deadline) {
			t.Fatalf("no upstream_unsolicited_response entry; log tail:\n%s", a.p.tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	log := a.p.log()
	if strings.Contains(log, "unsolicited-secret-bytes") || strings.Contains(log, "X-Upstream-Secret") {
		t.Error("upstream bytes reached the log")
	}
	for _, line := range strings.Split(log, "\n") {
		// The harness's header, and the configuration's warnings (file:line:col), printed before the log starts.
		if line != "" && !strings.HasPrefix(line, "{") && !strings.HasPrefix(line, "=== ") && !diagnosticLine.MatchString(line) {
			t.Errorf("a line outside the structured log: %q", line)
		}
	}
}
