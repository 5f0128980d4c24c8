package e2e

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// lenientUpstream routes the way some frameworks do, for the readings the
// sidecar must not miss: the path of X-Original-URL or X-Rewrite-URL when
// one is sent (Symfony before 3.4.14, Zend, IIS), matched ignoring case with
// Unicode simple case mappings (.NET OrdinalIgnoreCase, Java
// equalsIgnoreCase, strings.EqualFold: "ſ" is "s", "ı" is "i"). It records
// the admin handlers it ran.
type lenientUpstream struct {
	url string

	mu  sync.Mutex
	ran []string
}

func newLenientUpstream(t *testing.T) *lenientUpstream {
	t.Helper()
	u := &lenientUpstream{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		for _, h := range []string{"X-Original-Url", "X-Rewrite-Url"} {
			if v := r.Header.Get(h); v != "" {
				path = v
			}
		}
		const admin = "/orders/admin"
		if m := strings.ToUpper(r.Method); m == "POST" || m == "DELETE" {
			if n := utf8.RuneCountInString(admin); utf8.RuneCountInString(path) >= n {
				if head := string([]rune(path)[:n]); strings.EqualFold(head, admin) {
					u.mu.Lock()
					u.ran = append(u.ran, r.Method+" "+r.URL.RawPath+" "+path)
					u.mu.Unlock()
				}
			}
		}
		_, _ = io.WriteString(w, "lenient")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.url = "http://" + ln.Addr().String()
	return u
}

// TestAdversarialLenientReadings: a token that grants orders:read only
// reaches no admin handler of a lenient upstream, however the path is
// spelled or overridden, and query names that parsers read as access_token
// are refused.
func TestAdversarialLenientReadings(t *testing.T) {
	up := newLenientUpstream(t)
	a := newAdv(t, advOptions{Upstream: up.url})
	outer, _ := a.outer()
	auth := []string{"Authorization", "Bearer " + outer}
	cases := []struct {
		method, target string
		header         []string
		want           int
	}{
		{"POST", "/orders/admin", nil, 403},
		{"POST", "/orders/adm%C4%B1n", nil, 403},   // ı
		{"DELETE", "/order%C5%BF/admin", nil, 403}, // ſ
		{"POST", "/ORDER%C5%BF/ADM%C4%B0N", nil, 403},
		{"POST", "/orders/1", []string{"X-Original-URL", "/orders/admin"}, 200},
		{"POST", "/orders/1", []string{"X-Rewrite-URL", "/orders/admin"}, 200},
		{"GET", "/orders/1?access.token=x", nil, 400},
		{"GET", "/orders/1?access_token[]=x", nil, 400},
		{"GET", "/orders/1?access%20token=x", nil, 400},
		{"POST", "/orders/1", nil, 200},
	}
	for _, tc := range cases {
		r := rawExchange(t, a.listen, tc.method, tc.target, append(append([]string{}, auth...), tc.header...), "")
		if r.status != tc.want {
			t.Errorf("%s %s %q: %d, want %d (%s)", tc.method, tc.target, tc.header, r.status, tc.want, r.body)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, h := range up.ran {
		t.Errorf("the upstream ran an admin handler: %q", h)
	}
}

// TestAdversarialEarlyAnswerSmuggling: an upstream that answers a POST
// without reading its body (a Python handler that refuses early) must
// neither run the body as a request the sidecar never checked nor let it
// swallow the next client's request, inner token included, as its own body.
func TestAdversarialEarlyAnswerSmuggling(t *testing.T) {
	naive := newNaiveUpstream(t)
	a := newAdv(t, advOptions{Upstream: naive.url, SidecarExtra: dispatchRoutes})
	outer, inner := a.outer()
	auth := []string{"Authorization", "Bearer " + outer}
	for _, tc := range []struct {
		name, method, body string
	}{
		{"run", "POST", "DELETE /orders/admin/1 HTTP/1.1\r\nHost: up\r\nAuthorization: Bearer unverified\r\n\r\n"},
		{"swallow", "POST", "POST /orders/swallow HTTP/1.1\r\nHost: up\r\nContent-Length: 2000\r\n\r\n"},
		{"swallow by PUT", "PUT", "POST /orders/swallow HTTP/1.1\r\nHost: up\r\nContent-Length: 2000\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := rawExchange(t, a.listen, tc.method, "/orders/early", auth, tc.body); r.status != 403 {
				t.Fatalf("early answer: %d %s", r.status, r.body)
			}
			for range 2 {
				r := rawExchange(t, a.listen, "GET", "/orders/1", auth, "")
				if r.status != 200 || r.body != "naive GET /orders/1" {
					t.Errorf("the next client got %d %q, want its own answer", r.status, r.body)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // let a wrongly kept connection show what it ran
	for _, r := range naive.requests() {
		switch {
		case strings.HasPrefix(r.path, "/orders/admin"), r.path == "/orders/swallow":
			t.Errorf("the upstream ran the smuggled %q (Authorization %q)", r.line, r.auth)
		case strings.Contains(r.body, inner), strings.Contains(r.body, "Bearer"):
			t.Errorf("a request body swallowed a client's request: %q", r.line)
		}
	}
}
