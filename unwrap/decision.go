package unwrap

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

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
	ri := &requestInfo{id: requestID(header.Values("X-Request-Id"))}
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
