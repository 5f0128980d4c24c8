package unwrap

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// requestInfo is the request-scoped state shared by the handler, Rewrite
// and the proxy's error handler.
type requestInfo struct {
	id     string
	authz  string // the Authorization header to inject; empty on public paths
	public bool
	// failed is set by the proxy's error handler.
	failed bool
	// bodyErr is set when reading the client's request body failed while
	// forwarding it (the transport reads it on its own goroutine).
	bodyErr atomic.Bool
	access  accessInfo // accesslog.go
	// bodyOpen is set while the client's request body is being forwarded
	// and not read to its end (see modifyResponse).
	bodyOpen atomic.Bool
	// body bounds the pauses of the client's request body (limits.go);
	// nil for requests without a body.
	body *bodyIdle
	// ctx is the inbound request's context: requestInfo is the context
	// the handler passes on (withInfo), one allocation fewer than
	// context.WithValue.
	ctx context.Context
	// vals backs the header values set for the request (the response's
	// X-Request-Id, rewrite's): one allocation for all of them.
	vals [7]string
}

type infoKey struct{}

// withInfo returns ctx carrying ri: ri itself, as a context.
func withInfo(ctx context.Context, ri *requestInfo) context.Context {
	ri.ctx = ctx
	return (*infoCtx)(ri)
}

// infoCtx is a requestInfo as the context.Context of its request: the
// parent's, with ri as the value of infoKey.
type infoCtx requestInfo

func (c *infoCtx) Deadline() (time.Time, bool) { return c.ctx.Deadline() }
func (c *infoCtx) Done() <-chan struct{}       { return c.ctx.Done() }
func (c *infoCtx) Err() error                  { return c.ctx.Err() }
func (c *infoCtx) Value(key any) any {
	if key == (infoKey{}) {
		return (*requestInfo)(c)
	}
	return c.ctx.Value(key)
}

func infoFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(infoKey{}).(*requestInfo)
	if ri == nil {
		return &requestInfo{}
	}
	return ri
}

// middleware wraps next with the request id and panic recovery: the
// outermost layer, so that every answer carries the id.
func (s *Sidecar) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &requestInfo{id: requestID(r.Header.Values("X-Request-Id")), access: accessInfo{start: time.Now()}}
		ri.vals[6] = ri.id
		w.Header()["X-Request-Id"] = ri.vals[6:7:7]
		defer s.logAccess(r, ri)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				// The panic value is not logged: it could hold request data.
				s.log.Error("panic serving request", zap.String(fieldRequestID, ri.id), zap.String(fieldReason, string(ReasonPanic)))
				s.metrics.request(outcomeInternal, ReasonPanic)
				ri.access.answered(http.StatusInternalServerError, ReasonPanic)
				refuseNow(w, r)
				writeJSONError(w, http.StatusInternalServerError, ri.id, codeServerError, descServerError)
			}
		}()
		next.ServeHTTP(w, r.WithContext(withInfo(r.Context(), ri)))
	})
}

// serve is DESIGN.md's "Sidecar behaviour": the decision (decide.go),
// then the proxy.
func (s *Sidecar) serve(w http.ResponseWriter, r *http.Request) {
	ri := infoFrom(r.Context())
	if !s.decide(w, r, ri) {
		return
	}
	reason := ReasonOK
	if ri.public {
		reason = ReasonPublic
	}
	s.forward(w, r, ri, reason)
}

// checkRoutes applies every route whose prefix matches the raw or decoded
// path, ignoring case, and one of whose methods the upstream may run
// (routeApplies, in paths.go): the inner token needs one of the route's
// scopes.
func (s *Sidecar) checkRoutes(r *http.Request, raw, decoded string, c *Claims) *Failure {
	var buf [4]string
	var methods []string
	for i := range s.cfg.Routes {
		rt := &s.cfg.Routes[i]
		if methods == nil && len(rt.Methods) > 0 {
			methods = routeMethods(r, buf[:0])
		}
		if !routeApplies(rt.PathPrefix, rt.Methods, raw, decoded, methods) {
			continue
		}
		if !c.covers(rt.Scopes) {
			return insufficient(ReasonRouteScope, descRouteScope, rt.Scopes)
		}
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// forward proxies the request. The inbound request is never modified: an
// h2c upgrade is refused by forwarding a clone without it (RFC 9110 lets a
// server ignore Upgrade).
func (s *Sidecar) forward(w http.ResponseWriter, r *http.Request, ri *requestInfo, reason Reason) {
	if !s.inFlight.enter() {
		s.shed(w, r, ri)
		return
	}
	s.limits.inFlight.Inc()
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		ri.body = s.newBodyIdle(w)
	}
	defer func() {
		s.limits.inFlight.Dec()
		s.inFlight.leave()
	}()
	if isH2CUpgrade(r.Header) {
		r = r.Clone(r.Context())
		r.Header.Del("Upgrade")
		r.Header.Del("Http2-Settings")
	}
	s.proxy.ServeHTTP(w, r)
	if ri.failed {
		return
	}
	ri.access.reason = reason
	if ri.public {
		s.metrics.request(outcomePublic, reason)
		return
	}
	s.metrics.request(outcomeForwarded, reason)
}

func isH2CUpgrade(h http.Header) bool {
	for _, v := range h.Values("Upgrade") {
		for _, p := range strings.Split(v, ",") {
			// protocol-name ["/" protocol-version] (RFC 9110 7.8)
			if name, _, _ := strings.Cut(strings.TrimSpace(p), "/"); strings.EqualFold(name, "h2c") {
				return true
			}
		}
	}
	return false
}

// fail answers with f, counts and logs it.
func (s *Sidecar) fail(w http.ResponseWriter, r *http.Request, ri *requestInfo, f *Failure) {
	s.metrics.request(outcomeOf(f.Status), f.Reason)
	ri.access.refused(f)
	lvl := zapcore.DebugLevel
	if f.Status >= 500 {
		lvl = zapcore.WarnLevel
	}
	if ce := s.log.Check(lvl, "request refused"); ce != nil {
		ce.Write(zap.String(fieldRequestID, ri.id), zap.String(fieldReason, string(f.Reason)),
			zap.Int(fieldStatus, f.Status), zap.String(fieldMethod, r.Method))
	}
	refuseNow(w, r)
	writeFailure(w, s.api.Name, ri.id, f)
}

// failToken is fail for a token that failed verification: the log line
// also has the token's kind and fingerprint (never the token).
func (s *Sidecar) failToken(w http.ResponseWriter, r *http.Request, ri *requestInfo, f *Failure, token string) {
	s.metrics.request(outcomeOf(f.Status), f.Reason)
	ri.access.refused(f)
	lvl := zapcore.DebugLevel
	if f.Status >= 500 {
		lvl = zapcore.WarnLevel
	}
	if ce := s.log.Check(lvl, "token refused"); ce != nil {
		kind := "outer"
		if f.Inner {
			kind = "inner"
		}
		fields := []zap.Field{zap.String(fieldRequestID, ri.id), zap.String(fieldReason, string(f.Reason)),
			zap.Int(fieldStatus, f.Status), zap.String(fieldTokenKind, kind), zap.String(fieldTokenFP, fingerprint(token)),
			zap.String(fieldMethod, r.Method)}
		if f.Err != nil {
			fields = append(fields, zap.Error(f.Err))
		}
		ce.Write(fields...)
	}
	refuseNow(w, r)
	writeFailure(w, s.api.Name, ri.id, f)
}

// headerBlockSize is the size of the request head as HTTP/1.1 sends it:
// the request line and every header line (Host included, which net/http
// moves out of Header), each with its CRLF, and the blank line.
func headerBlockSize(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2 + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	if r.Host != "" {
		n += len("Host: ") + len(r.Host) + 2
	}
	return n
}

// fingerprint is the first 8 hex characters of the token's SHA-256.
func fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}

// rewrite builds the upstream request: the upstream URL with the path
// exactly as received, client-sent forwarding headers replaced, credentials
// and suspicious headers removed, and the inner token injected. Rewrite
// (unlike Director) runs after hop-by-hop headers are removed, so a
// Connection header cannot remove what is set here.
func (s *Sidecar) rewrite(pr *httputil.ProxyRequest) {
	ri := infoFrom(pr.In.Context())
	pr.SetURL(s.upstream)
	out := pr.Out
	out.Host = s.forwardedHost(pr.In)
	h := out.Header
	for name := range h {
		if strings.IndexByte(name, '_') >= 0 || hasPrefixFold(name, "x-forwarded-") {
			delete(h, name)
		}
	}
	// Canonical names: the server canonicalizes what it reads, and a name
	// it could not canonicalize holds a byte that is not a token character.
	// X-Original-URL and X-Rewrite-URL (and nginx's X-Original-URI) make
	// some frameworks route another path than the one matched here.
	for _, name := range [...]string{"Forwarded", "X-Real-Ip", "Proxy-Authorization", "Authorization", "X-Request-Id",
		"X-Original-Url", "X-Rewrite-Url", "X-Original-Uri"} {
		delete(h, name)
	}
	for _, name := range s.strip {
		h.Del(name)
	}
	// One backing array for the values set here (and the response's
	// X-Request-Id, vals[6]).
	vals := &ri.vals
	vals[2], vals[3], vals[4], vals[5] = pr.In.Host, "http", ri.id, ri.authz
	if pr.In.TLS != nil {
		vals[3] = "https"
	}
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		vals[0], vals[1] = ip, ip
		h["X-Forwarded-For"] = vals[0:1:1]
		h["X-Real-Ip"] = vals[1:2:2]
	}
	h["X-Forwarded-Host"] = vals[2:3:3]
	h["X-Forwarded-Proto"] = vals[3:4:4]
	h["X-Request-Id"] = vals[4:5:5]
	if !ri.public && ri.authz != "" {
		h["Authorization"] = vals[5:6:6]
	}
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = &clientBody{ReadCloser: out.Body, ri: ri}
		ri.bodyOpen.Store(true)
	}
	// A body the upstream may leave unread: a connection of its own.
	out.Close = closeAfterBody(pr.In)
	// Trailers may not name a header the sidecar sets or removes.
	for name := range out.Trailer {
		if setBySidecar(name) {
			delete(out.Trailer, name)
		}
	}
}

// hasPrefixFold is strings.HasPrefix ignoring case the way case-insensitive
// routers do: ASCII, and Unicode simple case mappings, under which "ſ" is
// "s", "K" (Kelvin) is "k" and "ı" and "İ" are "i" (.NET OrdinalIgnoreCase,
// Java equalsIgnoreCase, strings.EqualFold). Runes are compared, not bytes:
// such a rune and its ASCII letter differ in length.
func hasPrefixFold(s, prefix string) bool {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return true
	}
	if isASCII(s) && isASCII(prefix) {
		return false
	}
	for prefix != "" {
		if s == "" {
			return false
		}
		c, n := utf8.DecodeRuneInString(s)
		p, m := utf8.DecodeRuneInString(prefix)
		if c == utf8.RuneError && n == 1 || c != p && foldRune(c) != foldRune(p) {
			return false
		}
		s, prefix = s[n:], prefix[m:]
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldRune maps r to the lower case of its upper case: one rune for every
// spelling that a simple-mapping router takes for the same letter.
func foldRune(r rune) rune {
	return unicode.ToLower(unicode.ToUpper(r))
}

// clientBody is the client's request body as the transport reads it: a
// read error is the client's (a malformed chunked encoding, a connection
// cut mid-body), not the upstream's, so it is marked for proxyError.
type clientBody struct {
	io.ReadCloser
	ri *requestInfo
}

// errClientBody is the cause of a forwarding that failed reading the
// client's request body.
var errClientBody = errors.New("reading the request body")

func (b *clientBody) Read(p []byte) (int, error) {
	b.ri.body.extend()
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.ri.bodyOpen.Store(false)
	}
	if err != nil && err != io.EOF {
		b.ri.body.read(err)
		b.ri.bodyErr.Store(true)
		err = fmt.Errorf("%w: %w", errClientBody, err)
	}
	return n, err
}

func setBySidecar(name string) bool {
	l := strings.ToLower(name)
	switch l {
	case "authorization", "proxy-authorization", "forwarded", "x-real-ip", "x-request-id", "host", "cookie",
		"x-original-url", "x-rewrite-url", "x-original-uri":
		return true
	}
	return strings.HasPrefix(l, "x-forwarded-") || strings.ContainsRune(l, '_')
}

// modifyResponse keeps the sidecar's X-Request-Id as the only one. An
// upstream that answers before the client's request body is all
// forwarded gets its answer sent at once: with "Connection: close", so
// that net/http does not first drain the rest at the client's pace.
func modifyResponse(resp *http.Response) error {
	resp.Header.Del("X-Request-Id")
	if resp.Request != nil && infoFrom(resp.Request.Context()).bodyOpen.Load() {
		resp.Header.Set("Connection", "close")
	}
	return nil
}

// proxyError renders upstream failures: 504 past upstream_timeout, 502
// otherwise. A failure to read the client's request body is the client's:
// 400 invalid_request, and the connection is closed (what is left of the
// request cannot be framed), never an upstream failure.
func (s *Sidecar) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	ri := infoFrom(r.Context())
	ri.failed = true
	if ri.body.expired() {
		s.idleAbort(w, ri)
		return
	}
	if ri.bodyErr.Load() || errors.Is(err, errClientBody) {
		if ce := s.log.Check(zapcore.DebugLevel, "request body unreadable"); ce != nil {
			ce.Write(zap.String(fieldRequestID, ri.id), zap.String(fieldReason, string(ReasonBadBody)), zap.Error(err))
		}
		s.metrics.request(outcomeBadRequest, ReasonBadBody)
		ri.access.answered(http.StatusBadRequest, ReasonBadBody)
		w.Header().Set("Connection", "close")
		writeFailure(w, s.api.Name, ri.id, badRequest(ReasonBadBody))
		return
	}
	status, code, desc, reason := http.StatusBadGateway, codeBadGateway, descBadGateway, ReasonUpstreamRefused
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		reason = ReasonClientGone
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		status, code, desc, reason = http.StatusGatewayTimeout, codeGatewayTimeout, descGatewayTimout, ReasonUpstreamTimeout
	}
	s.metrics.request(outcomeUpstream, reason)
	ri.access.answered(status, reason)
	lvl := zapcore.WarnLevel
	if reason == ReasonClientGone {
		lvl = zapcore.DebugLevel
	}
	if ce := s.log.Check(lvl, "upstream failed"); ce != nil {
		ce.Write(zap.String(fieldRequestID, ri.id), zap.String(fieldReason, string(reason)), zap.Int(fieldStatus, status), zap.Error(err))
	}
	refuseNow(w, r) // the rest of a request body is not read
	writeJSONError(w, status, ri.id, code, desc)
}

// rawPath returns the request's path as sent and percent-decoded, and
// whether it is acceptable (checkPath, in paths.go).
func rawPath(r *http.Request) (raw, decoded string, ok bool) {
	raw = r.RequestURI
	if !strings.HasPrefix(raw, "/") {
		if r.URL == nil || r.URL.Host == "" {
			return "", "", false // "*" or garbage
		}
		raw = r.URL.EscapedPath()
	}
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	decoded, ok = checkPath(raw)
	return raw, decoded, ok
}

// hasQueryToken reports an access_token query parameter (RFC 6750 2.3),
// which is refused, however the name's letters are cased or escaped.
func hasQueryToken(rawQuery string) bool {
	for kv := range strings.SplitSeq(rawQuery, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if strings.EqualFold(queryParamName(k), "access_token") {
			return true
		}
	}
	return false
}

// queryParamName is the name a service's query parser gives the decoded
// parameter name k: cut at NUL (C strings), without leading spaces, before
// an index ("a[]", "a[x]": an array named a in PHP, Rack and Express's qs),
// with " ", "." and an unmatched "[" read as "_" (PHP).
func queryParamName(k string) string {
	if i := strings.IndexByte(k, 0); i >= 0 {
		k = k[:i]
	}
	k = strings.TrimLeft(k, " ")
	if i := strings.IndexByte(k, '['); i >= 0 && strings.IndexByte(k[i:], ']') >= 0 {
		k = k[:i]
	}
	if strings.ContainsAny(k, " .[") {
		k = strings.Map(func(r rune) rune {
			if r == ' ' || r == '.' || r == '[' {
				return '_'
			}
			return r
		}, k)
	}
	return k
}

// bearer extracts the token of the one Authorization header (RFC 6750
// 2.1). Its syntax (b64token) is the caller's to check: a token found in
// the verified-token cache passed that check when it was cached.
func bearer(h http.Header) (string, *Failure) {
	vals := h.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", &Failure{Status: http.StatusUnauthorized, Code: codeUnauthorized, Description: descMissing, Reason: ReasonMissingToken}
	case 1:
	default:
		return "", badRequest(ReasonSeveralHeaders)
	}
	v := vals[0]
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", &Failure{Status: http.StatusUnauthorized, Code: codeUnauthorized, Description: descMissing, Reason: ReasonOtherScheme}
	}
	return strings.TrimLeft(rest, " "), nil
}

// isB64Token checks RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." /
// "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for i < len(s) && b64TokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// b64TokenChar marks the characters of RFC 6750's b64token before its
// padding.
var b64TokenChar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// requestID returns the client's X-Request-Id when there is exactly one and
// it is well-formed (1 to 128 of [A-Za-z0-9._:-]), else a new random one.
func requestID(vals []string) string {
	if len(vals) == 1 && validRequestID(vals[0]) {
		return vals[0]
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}
