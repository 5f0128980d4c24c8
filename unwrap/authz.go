package unwrap

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Paths of the HTTP decision endpoints (DESIGN.md "Behind gateways and
// meshes").
const (
	// AuthzForwardPath answers nginx auth_request, Traefik forwardAuth and
	// Caddy forward_auth: the original request is X-Forwarded-Method and
	// X-Forwarded-Uri.
	AuthzForwardPath = "/authz/forward"
	// AuthzEnvoyPrefix is Envoy's HTTP ext_authz path_prefix: the rest of
	// the path is the original one, the method the original method.
	AuthzEnvoyPrefix = "/authz/envoy"
)

// outcomeAllowed is the request metric's outcome of an allowing decision
// (a public path is outcomePublic, as in the proxy).
const outcomeAllowed = "allowed"

// Reasons of the decision endpoints.
const (
	// ReasonForwardedHeaders: X-Forwarded-Method or X-Forwarded-Uri is
	// missing, repeated or malformed (400 invalid_request).
	ReasonForwardedHeaders Reason = "bad_forwarded_headers"
	// ReasonNotFound: a path of the decision listener that is no endpoint.
	ReasonNotFound Reason = "not_found"
)

// AuthzHandler returns the handler of the HTTP decision endpoints:
// AuthzForwardPath and AuthzEnvoyPrefix. It decides about the original
// request exactly as the proxy would (same checks, caches, answers,
// metrics and logs) and, when allowed, answers 200 with an empty body and
// the Authorization header for the upstream (none on a public path). It
// trusts what the gateway says the original request was: only the gateway
// may reach it. It is safe for concurrent use.
func (s *Sidecar) AuthzHandler() http.Handler { return s.authzHandler }

// serveAuthz answers one decision request.
func (s *Sidecar) serveAuthz(w http.ResponseWriter, r *http.Request) {
	ri := infoFrom(r.Context())
	orig, f := originalRequest(r)
	if f != nil {
		if f.Reason == ReasonNotFound {
			ri.access.answered(http.StatusNotFound, ReasonNotFound)
			s.metrics.request(outcomeBadRequest, ReasonNotFound)
			writeJSONError(w, http.StatusNotFound, ri.id, "not_found", "no such decision endpoint")
			return
		}
		s.fail(w, r, ri, f)
		return
	}
	if !s.decide(w, orig, ri) {
		return
	}
	s.allow(w, ri)
}

// allow answers an allowing decision: 200, no body, the inner token for
// the upstream (the gateway must replace the client's Authorization with
// it), and the request id that the middleware set.
func (s *Sidecar) allow(w http.ResponseWriter, ri *requestInfo) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if ri.public {
		ri.access.answered(http.StatusOK, ReasonPublic)
		w.WriteHeader(http.StatusOK)
		s.metrics.request(outcomePublic, ReasonPublic)
		return
	}
	h["Authorization"] = []string{ri.authz}
	ri.access.answered(http.StatusOK, ReasonOK)
	w.WriteHeader(http.StatusOK)
	s.metrics.request(outcomeAllowed, ReasonOK)
}

// originalRequest rebuilds the request the gateway asks about: a shallow
// copy of r (its headers and context: the token is the client's
// Authorization that the gateway passes on) with the original method and
// request URI. The path rules are decide's; this only reads the two
// sources DESIGN.md allows. A path that is no endpoint gives a Failure with
// ReasonNotFound.
func originalRequest(r *http.Request) (*http.Request, *Failure) {
	path, _, _ := strings.Cut(r.RequestURI, "?")
	var method, uri string
	switch {
	case path == AuthzForwardPath:
		m, u := r.Header.Values("X-Forwarded-Method"), r.Header.Values("X-Forwarded-Uri")
		if len(m) != 1 || len(u) != 1 || !validHeaderToken(m[0]) {
			return nil, badRequest(ReasonForwardedHeaders)
		}
		method, uri = m[0], u[0]
	case strings.HasPrefix(path, AuthzEnvoyPrefix+"/"):
		method, uri = r.Method, r.RequestURI[len(AuthzEnvoyPrefix):]
	default:
		return nil, &Failure{Status: http.StatusNotFound, Reason: ReasonNotFound}
	}
	o := r.WithContext(r.Context())
	o.Method = method
	o.RequestURI = uri
	// No Host: an absolute-form original URI is refused by rawPath.
	o.URL = &url.URL{}
	if _, q, ok := strings.Cut(uri, "?"); ok {
		o.URL.RawQuery = q
	}
	return o, nil
}

// validHeaderToken reports whether s is an RFC 9110 token (a method).
func validHeaderToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// Decision is the answer about an original request that a mesh proxy asks
// about (Envoy's gRPC ext_authz): what the proxy would have done.
type Decision struct {
	// Status is 200 when the request may pass, else the status the proxy
	// would have answered with.
	Status int
	// Header: when allowed, Authorization for the upstream (absent on a
	// public path) and X-Request-Id; when refused, the proxy's headers
	// (WWW-Authenticate, Retry-After, Content-Type...).
	Header http.Header
	// Body is the refusal's JSON body; empty when allowed.
	Body []byte
	// Remove names the headers the upstream must not receive: the
	// client's Authorization on a public path, and strip_headers.
	Remove []string
}

// Allowed reports whether the request may pass.
func (d *Decision) Allowed() bool { return d.Status == http.StatusOK }

// Decide decides about the original request — its method, its request
// target as sent (path and query, not decoded), its Host and its headers
// (canonical names; several values of a name are several headers) —
// exactly as the proxy would, with the same caches, metrics and logs. It
// never panics (a panic is a 500 server_error) and is safe for concurrent
// use.
func (s *Sidecar) Decide(ctx context.Context, method, target, host string, header http.Header) (d *Decision) {
	if header == nil {
		header = http.Header{}
	}
	ri := &requestInfo{id: requestID(header.Values("X-Request-Id")), access: accessInfo{start: time.Now()}}
	rec := &decisionRecorder{header: http.Header{"X-Request-Id": {ri.id}}}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic deciding", zap.String(fieldRequestID, ri.id), zap.String(fieldReason, string(ReasonPanic)))
			s.metrics.request(outcomeInternal, ReasonPanic)
			rec = &decisionRecorder{header: http.Header{}}
			writeJSONError(rec, http.StatusInternalServerError, ri.id, codeServerError, descServerError)
			d = rec.decision()
		}
	}()
	r := (&http.Request{Method: method, RequestURI: target, URL: &url.URL{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Host: host, RemoteAddr: ""}).WithContext(ctx)
	if _, q, ok := strings.Cut(target, "?"); ok {
		r.URL.RawQuery = q
	}
	// The access log line, as the HTTP endpoints write it (its path is
	// the original path decide records; never the query).
	defer s.logAccess(r, ri)
	if !validHeaderToken(method) {
		s.fail(rec, r, ri, badRequest(ReasonForwardedHeaders))
		return rec.decision()
	}
	if !s.decide(rec, r, ri) {
		return rec.decision()
	}
	s.allow(rec, ri)
	d = rec.decision()
	if ri.public {
		d.Remove = append(d.Remove, "Authorization")
	}
	d.Remove = append(d.Remove, s.strip...)
	return d
}

// decisionRecorder is the ResponseWriter that Decide's answers are
// written to.
type decisionRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *decisionRecorder) Header() http.Header { return r.header }

func (r *decisionRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *decisionRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *decisionRecorder) decision() *Decision {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return &Decision{Status: r.status, Header: r.header, Body: r.body.Bytes()}
}
