package mint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/embedtoken/embedtoken/catalog"
)

// DefaultMaxBodyBytes bounds a hook request body when HandlerOptions leaves
// MaxBodyBytes zero. Hydra's token hook bodies are a few KiB.
const DefaultMaxBodyBytes = 256 << 10

// DefaultJWKSMaxAge is the Cache-Control max-age of the public documents
// when HandlerOptions leaves JWKSMaxAge zero.
const DefaultJWKSMaxAge = 5 * time.Minute

// Current returns the Minter that serves a request. The hook server stores
// the Minter of the last good configuration in an atomic.Pointer and passes
// its Load method, so a reload swaps minters between requests. It may return
// nil while no configuration has loaded; requests then get 503.
type Current func() *Minter

// HandlerOptions tune the HTTP handlers. A nil *HandlerOptions is the zero
// value.
type HandlerOptions struct {
	// Logger receives request failures (never a token, key or secret). If
	// nil, nothing is logged.
	Logger *zap.Logger
	// Metrics records hook requests by outcome. If nil, nothing is recorded.
	Metrics *Metrics
	// MaxBodyBytes bounds hook request bodies. If zero, DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// JWKSMaxAge is the Cache-Control max-age of the JWKS and the metadata.
	// If zero, DefaultJWKSMaxAge.
	JWKSMaxAge time.Duration
	// PublicURL is the base URL of the public listener, for the metadata's
	// jwks_uri and token_endpoint. If empty, it is derived from the minter's
	// jwks_url when that ends in /.well-known/jwks.json, else from the
	// request.
	PublicURL string
	// ExchangeTimeout bounds each token exchange request, subject
	// verification included. If zero, DefaultExchangeTimeout.
	ExchangeTimeout time.Duration
}

func (o *HandlerOptions) orZero() *HandlerOptions {
	if o == nil {
		return &HandlerOptions{}
	}
	return o
}

// minterKey is the context key of the Minter serving a hook request.
type minterKey struct{}

// hookServer serves the private listener.
type hookServer struct {
	current Current
	log     *zap.Logger
	metrics *Metrics
	maxBody int64
	mux     *http.ServeMux
	// unauth rate-limits the lines of refused API keys (attacker-driven).
	unauth logLimiter
}

// NewHookHandler returns the private listener's handler: POST /hooks/hydra
// and, when the current configuration has hook.generic, POST
// /hooks/generic, and with hook.okta, POST /hooks/okta. Every request must carry the hook's API key header (compared
// in constant time); without it the answer is 401 and nothing is minted.
// Each request is bounded by hook.timeout.
func NewHookHandler(current Current, opts *HandlerOptions) http.Handler {
	opts = opts.orZero()
	h := &hookServer{current: current, log: opts.Logger, metrics: opts.Metrics, maxBody: opts.MaxBodyBytes}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	h.log = h.log.Named("hook")
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("POST /hooks/hydra", h.hydra)
	h.mux.HandleFunc("POST /hooks/generic", h.generic)
	h.mux.HandleFunc("POST /hooks/okta", h.okta)
	return h
}

// endpointOf names a path for metric labels; unknown paths share one label.
func endpointOf(path string) string {
	switch path {
	case "/hooks/hydra":
		return "hydra"
	case "/hooks/generic":
		return "generic"
	case "/hooks/okta":
		return "okta"
	}
	return "other"
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint := endpointOf(r.URL.Path)
	m := h.current()
	if m == nil || m.cat.Hook == nil {
		h.fail(w, r, endpoint, http.StatusServiceUnavailable, reasonError, "temporarily_unavailable", "no configuration loaded", nil)
		return
	}
	hook := m.cat.Hook
	name := hook.APIKeyHeader
	if name == "" {
		name = catalog.DefaultAPIKeyHeader
	}
	vals := r.Header.Values(name)
	if len(vals) != 1 || !hook.APIKey.Equal(vals[0]) {
		h.fail(w, r, endpoint, http.StatusUnauthorized, reasonUnauthorized, "unauthorized", "missing or wrong API key", nil)
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), minterKey{}, m)))
}

// request is the part every hook endpoint shares: the bound, the body read
// under the size limit, the media type. It returns the minter, the body and
// a context bounded by hook.timeout, or writes the failure.
func (h *hookServer) request(w http.ResponseWriter, r *http.Request, endpoint string) (*Minter, []byte, context.Context, context.CancelFunc, bool) {
	m := r.Context().Value(minterKey{}).(*Minter)
	timeout := m.cat.Hook.Timeout
	if timeout <= 0 {
		timeout = catalog.DefaultHookTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	deadline, _ := ctx.Deadline()
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(deadline) // unsupported by recorders: fine
	_ = rc.SetWriteDeadline(deadline.Add(time.Second))

	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			h.fail(w, r, endpoint, http.StatusUnsupportedMediaType, reasonMediaType, "invalid_request", "Content-Type must be application/json", nil)
			cancel()
			return nil, nil, nil, nil, false
		}
	}
	var body []byte
	err := error(&http.MaxBytesError{Limit: h.maxBody})
	if r.ContentLength <= h.maxBody { // an announced excess is refused before it arrives
		body, err = readBody(http.MaxBytesReader(w, r.Body, h.maxBody), r.ContentLength, h.maxBody)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			h.fail(w, r, endpoint, http.StatusRequestEntityTooLarge, reasonTooLarge, "invalid_request",
				fmt.Sprintf("request body over %d bytes", h.maxBody), nil)
		case errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil:
			h.fail(w, r, endpoint, http.StatusServiceUnavailable, reasonTimeout, "temporarily_unavailable", "request body not read in time", err)
		default:
			h.fail(w, r, endpoint, http.StatusBadRequest, reasonBadRequest, "invalid_request", "request body could not be read", err)
		}
		cancel()
		return nil, nil, nil, nil, false
	}
	return m, body, ctx, cancel, true
}

// readBodyPrealloc bounds what readBody allocates on the word of a
// Content-Length before the bytes arrive.
const readBodyPrealloc = 64 << 10

// readBody is io.ReadAll of a body of announced length size (-1: unknown)
// and at most limit bytes, into one buffer of the announced size (+1, to
// see the end; at most readBodyPrealloc) rather than one grown from 512
// bytes.
func readBody(r io.Reader, size, limit int64) ([]byte, error) {
	n := int64(512)
	if size >= 0 {
		n = min(size, limit, readBodyPrealloc) + 1
	}
	b := make([]byte, 0, n)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// mintFailed writes the answer to a failed Mint: deniedStatus for the
// Subject's fault, 503 past the deadline, 500 otherwise.
func (h *hookServer) mintFailed(w http.ResponseWriter, r *http.Request, endpoint string, deniedStatus int, deniedCode string, err error) {
	switch {
	case Denied(err):
		h.fail(w, r, endpoint, deniedStatus, reasonDenied, deniedCode, describe(err), nil)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		h.fail(w, r, endpoint, http.StatusServiceUnavailable, reasonTimeout, "temporarily_unavailable", "minting took too long", err)
	default:
		h.fail(w, r, endpoint, http.StatusInternalServerError, reasonError, "server_error", "minting failed", err)
	}
}

// describe is the client-facing text of a Denied error: the sentinel's
// message plus the claim name, never a value.
func describe(err error) string {
	var ce *ClaimError
	if errors.As(err, &ce) {
		return strings.ReplaceAll(ce.Error(), "mint: ", "")
	}
	return strings.ReplaceAll(err.Error(), "mint: ", "")
}

// fail renders every hook and public error: a status, a JSON body
// {"error", "error_description"}, and a log line with a stable reason. cause
// is logged, never sent.
func (h *hookServer) fail(w http.ResponseWriter, r *http.Request, endpoint string, status int, reason, code, desc string, cause error) {
	// Hydra answers a 403 by denying the token at once (access_denied), and
	// anything else but 5xx and 429 by a server_error. Every failure of a
	// request that came with the API key is deterministic (the same body
	// fails the same way again): answer Hydra 403, so that it denies the
	// token cleanly and never retries.
	if endpoint == "hydra" && status >= 400 && status < 500 && status != http.StatusUnauthorized && status != http.StatusForbidden {
		status = http.StatusForbidden
	}
	h.metrics.hookRequest(endpoint, reason)
	lvl := zapcore.DebugLevel
	switch reason {
	case reasonUnauthorized, reasonTimeout:
		lvl = zapcore.WarnLevel
	case reasonDenied:
		lvl = zapcore.InfoLevel
	case reasonError:
		lvl = zapcore.ErrorLevel
	}
	suppressed := 0
	if reason == reasonUnauthorized {
		var ok bool
		if ok, suppressed = h.unauth.allow(); !ok {
			lvl = zapcore.DebugLevel
		}
	}
	if ce := h.log.Check(lvl, "hook request failed"); ce != nil {
		fields := []zap.Field{zap.String(fieldEndpoint, endpoint), zap.String(fieldReason, reason), zap.Int("status", status), zap.String("description", desc)}
		if suppressed > 0 {
			fields = append(fields, zap.Int(fieldSuppressed, suppressed))
		}
		if cause != nil {
			fields = append(fields, zap.Error(cause))
		}
		ce.Write(fields...)
	}
	if endpoint == "okta" {
		// Okta issues the token unmodified on any status but 200: only
		// its error object denies it (okta.go).
		writeOktaError(w, desc)
		return
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// answer sends an issuer hook's 200 answer v, encoded before anything is
// written, so that a value that does not encode is answered as a failure
// (mintFailed) rather than as a truncated 200.
func (h *hookServer) answer(w http.ResponseWriter, r *http.Request, endpoint string, v any) {
	b, err := marshalCompact(v)
	h.answerJSON(w, r, endpoint, b, err)
}

// answerJSON sends b, an issuer hook's 200 answer encoded by its caller,
// or, when encoding failed with err, the failure.
func (h *hookServer) answerJSON(w http.ResponseWriter, r *http.Request, endpoint string, b []byte, err error) {
	if err != nil {
		h.mintFailed(w, r, endpoint, http.StatusForbidden, "access_denied", errors.Join(errors.New("mint: encode "+endpoint+" answer"), err))
		return
	}
	h.metrics.hookRequest(endpoint, reasonOK)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// writeJSON writes v as the JSON body of a response that must not be
// cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshalCompact(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeStrict decodes one JSON object from body into v: malformed JSON,
// a non-object, wrong types, trailing data and duplicate member names at
// any depth (`{"sub":"u","sub":"admin"}` must not mint for admin), and
// member names that match a field of v only when case is ignored, are
// errors. Fields v does not name are ignored (Hydra sends many). The error
// text names positions and fields, never input values.
func decodeStrict(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return errors.New("empty body: a JSON object is required")
	}
	if trimmed[0] != '{' {
		return errors.New("the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return describeJSONError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	// Exact member names: encoding/json fills a field from any case
	// variant of its name (the last one wins), so "SUBJECT" beside
	// "subject" is refused like a duplicate.
	if err := checkMembers(body, v); err != nil {
		return err
	}
	return nil
}

// describeJSONError turns a decoding error into a message without input
// values.
func describeJSONError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "value"
		}
		return fmt.Errorf("%s: want %s, got JSON %s", field, te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("truncated JSON")
	default:
		return errors.New("invalid JSON")
	}
}
