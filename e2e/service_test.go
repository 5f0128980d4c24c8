package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// service is a test service behind a sidecar: it records every request it
// receives and, for each of its downstream hops, calls that hop's sidecar
// forwarding its own Authorization header (its inner token), as a real
// service calling the APIs of its `calls` would.
type service struct {
	name   string
	srv    *httptest.Server
	client *http.Client

	mu   sync.Mutex
	next []hopCall
	got  []received
}

// hopCall is a downstream call a service makes for every request.
type hopCall struct {
	api string // the API called (for the report)
	url string // its sidecar's URL
}

// received is one request as a service saw it.
type received struct {
	Method string
	Path   string
	Header http.Header
	Token  string         // the bearer token, "" when none
	Next   map[string]int // the status of each downstream call
}

// serviceReply is a service's JSON answer.
type serviceReply struct {
	Service string         `json:"service"`
	Next    map[string]int `json:"next"`
}

// serviceTimeout bounds each downstream call of a test service.
const serviceTimeout = 10 * time.Second

func newService(t *testing.T, name string) *service {
	t.Helper()
	s := &service{name: name, client: newClient()}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.srv.Close()
		s.client.CloseIdleConnections()
	})
	return s
}

// calls makes s call api's sidecar at url on every request.
func (s *service) calls(api, url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = append(s.next, hopCall{api: api, url: url})
}

func (s *service) serve(w http.ResponseWriter, r *http.Request) {
	rec := received{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Next: map[string]int{}}
	if auth := r.Header.Get("Authorization"); len(auth) > 7 {
		rec.Token = auth[7:]
	}
	s.mu.Lock()
	next := append([]hopCall(nil), s.next...)
	s.mu.Unlock()
	status := http.StatusOK
	for _, n := range next {
		code := s.call(r.Context(), n.url, r.Header.Get("Authorization"))
		rec.Next[n.api] = code
		if code != http.StatusOK && code != http.StatusForbidden {
			status = http.StatusFailedDependency
		}
	}
	s.mu.Lock()
	s.got = append(s.got, rec)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(serviceReply{Service: s.name, Next: rec.Next})
}

func (s *service) call(ctx context.Context, url, auth string) int {
	ctx, cancel := context.WithTimeout(ctx, serviceTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode
}

// received returns the requests received so far and forgets them.
func (s *service) take() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}

// last requires exactly one request received since the last take.
func (s *service) one(t *testing.T) received {
	t.Helper()
	got := s.take()
	if len(got) != 1 {
		t.Fatalf("service %s received %d requests, want 1", s.name, len(got))
	}
	return got[0]
}

// none requires that no request reached s since the last take.
func (s *service) none(t *testing.T) {
	t.Helper()
	if got := s.take(); len(got) != 0 {
		t.Errorf("service %s received %d requests, want none", s.name, len(got))
	}
}
