package mint

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/embedtoken/embedtoken/catalog"
)

// Token type identifiers of RFC 8693 3 that the exchange accepts as
// subject_token_type and requested_token_type.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// DefaultExchangeTimeout bounds one token exchange request (subject
// verification included) when HandlerOptions leaves ExchangeTimeout zero.
const DefaultExchangeTimeout = 5 * time.Second

// MaxExchangeBodyBytes bounds a token exchange request body: a subject
// token (at most 16 KiB for the verifier) and a few parameters.
const MaxExchangeBodyBytes = 64 << 10

// exchangeRetryAfter is the Retry-After, in seconds, of a 503.
const exchangeRetryAfter = "5"

// Public descriptions of exchange failures: fixed texts in the character set
// RFC 6749 5.2 allows, never an input value.
const (
	descNoConfig        = "no configuration loaded"
	descNotEnabled      = "token exchange is not enabled: no exchange_client is declared"
	descMethod          = "use POST"
	descQuery           = "parameters belong in the request body, not in the URL"
	descClientAuth      = "client authentication failed: use HTTP Basic (client_secret_basic)"
	descSeveralAuth     = "several Authorization headers"
	descMediaType       = "Content-Type must be application/x-www-form-urlencoded"
	descTooLarge        = "request body too large"
	descBadBody         = "the request body could not be read"
	descBadForm         = "malformed application/x-www-form-urlencoded body"
	descRepeated        = "a parameter is repeated"
	descNoGrant         = "grant_type is required"
	descGrant           = "only urn:ietf:params:oauth:grant-type:token-exchange is supported"
	descClientSecret    = "client_secret in the body is not supported: use HTTP Basic"
	descClientID        = "client_id does not match the authenticated client"
	descActor           = "actor_token is not supported"
	descNoSubject       = "subject_token is required"
	descNoSubjectType   = "subject_token_type is required"
	descSubjectType     = "subject_token_type must be urn:ietf:params:oauth:token-type:access_token or urn:ietf:params:oauth:token-type:jwt"
	descRequestedType   = "requested_token_type must be urn:ietf:params:oauth:token-type:access_token or urn:ietf:params:oauth:token-type:jwt"
	descNoTarget        = "an audience or a resource is required"
	descSeveralTargets  = "exactly one audience or resource is allowed"
	descResourceURI     = "resource must be an absolute URI without a fragment"
	descUnknownTarget   = "no API has this audience"
	descNotExposedAPI   = "this API is reachable only through its callers"
	descTargetForbidden = "this client may not obtain tokens for this audience"
	descTargetNotGrant  = "the subject token was not granted this audience"
	descScopeSyntax     = "malformed scope"
	descScopeEmpty      = "no scope is left once narrowed to the API and the request"
	descSubjectInvalid  = "the subject token is invalid or not acceptable"
	descSubjectExpired  = "the subject token has expired"
	descSubjectMinter   = "a token of this minter is not a subject token: present an access token of a trusted issuer"
	descSubjectClaim    = "a claim of the subject token cannot be copied"
	descUnavailable     = "the subject token cannot be verified now; retry later"
	descServerError     = "internal error"
)

// exchangeParams are the parameters the endpoint reads; each may appear at
// most once (RFC 6749 3.2), except audience and resource, which RFC 8693
// lets repeat and this endpoint refuses with invalid_target. Unknown
// parameters are ignored (RFC 6749 3.2).
var exchangeParams = []string{
	"grant_type", "subject_token", "subject_token_type", "requested_token_type", "scope",
	"actor_token", "actor_token_type", "client_id", "client_secret",
}

// exchangeDummySecret is compared with the presented secret of an unknown
// client, so that an unknown client costs the same as a wrong secret.
var exchangeDummySecret = catalog.NewSecret("embedtoken-exchange-dummy-secret-000000")

// exchangeError is a refused exchange: what the client sees (status, code,
// desc) and what only the logs see (outcome, cause).
type exchangeError struct {
	status  int
	code    string
	outcome string
	desc    string
	cause   error
}

func badRequest(desc string) *exchangeError {
	return &exchangeError{status: http.StatusBadRequest, code: "invalid_request", outcome: outcomeInvalidRequest, desc: desc}
}

func badTarget(desc string) *exchangeError {
	return &exchangeError{status: http.StatusBadRequest, code: "invalid_target", outcome: outcomeInvalidTarget, desc: desc}
}

func badClient() *exchangeError {
	return &exchangeError{status: http.StatusUnauthorized, code: "invalid_client", outcome: outcomeInvalidClient, desc: descClientAuth}
}

// failedClient is badClient for HTTP Basic credentials that did not
// authenticate.
func failedClient() *exchangeError {
	f := badClient()
	f.desc = descClientFailed
	return f
}

func badSubject(desc string, cause error) *exchangeError {
	return &exchangeError{status: http.StatusBadRequest, code: "invalid_request", outcome: outcomeInvalidSubject, desc: desc, cause: cause}
}

func unavailableErr(desc string, cause error) *exchangeError {
	return &exchangeError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", outcome: outcomeUnavailable, desc: desc, cause: cause}
}

// tokenResponse is the RFC 8693 2.2.1 answer.
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
}

// exchangeServer serves the token endpoint.
type exchangeServer struct {
	current  Current
	log      *zap.Logger
	metrics  *Metrics
	timeout  time.Duration
	throttle *authThrottle
}

// NewExchangeHandler returns the token exchange endpoint (RFC 8693) of the
// public listener, to register at TokenEndpointPath on NewPublicMux's mux.
// It serves the Minter current returns, which verifies subject tokens with
// its Options.Subjects and authenticates the catalog's exchange_client
// blocks; without either it answers 404. The grammar, the errors and the
// minting are DESIGN.md's "Token exchange": form parameters only, HTTP
// Basic client authentication (RFC 6749 2.3.1), one audience or resource,
// the issued token minted by Minter.Issue. Every answer has Cache-Control:
// no-store. Each request is bounded by HandlerOptions.ExchangeTimeout. It
// never logs a token or a secret.
func NewExchangeHandler(current Current, opts *HandlerOptions) http.Handler {
	opts = opts.orZero()
	e := &exchangeServer{current: current, log: opts.Logger, metrics: opts.Metrics, timeout: opts.ExchangeTimeout,
		throttle: newAuthThrottle(nil)}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	e.log = e.log.Named("exchange")
	if e.timeout <= 0 {
		e.timeout = DefaultExchangeTimeout
	}
	return e
}

func (e *exchangeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !e.guard(w, r, start) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.timeout)
	defer cancel()
	var client string
	resp, fail := e.exchange(ctx, w, r, &client)
	h := w.Header()
	h.Set("Pragma", "no-cache")
	if fail != nil {
		if fail.outcome == outcomeInvalidClient {
			e.authFailed(r, fail)
		}
		e.failed(w, fail, client, time.Since(start))
		return
	}
	e.metrics.exchange(outcomeOK, time.Since(start))
	writeJSON(w, http.StatusOK, resp)
}

// failed renders a refused exchange (RFC 6749 5.2), logs it with a stable
// reason and counts it.
func (e *exchangeServer) failed(w http.ResponseWriter, f *exchangeError, client string, d time.Duration) {
	e.metrics.exchange(f.outcome, d)
	lvl := zapcore.DebugLevel
	switch f.outcome {
	case outcomeUnavailable: // invalid_client: authFailed logs it, rate-limited
		lvl = zapcore.WarnLevel
	case outcomeError:
		lvl = zapcore.ErrorLevel
	}
	if ce := e.log.Check(lvl, "token exchange refused"); ce != nil {
		fields := []zap.Field{zap.String(fieldReason, f.outcome), zap.Int(fieldStatus, f.status),
			zap.String(fieldCode, f.code), zap.String(fieldDescription, f.desc)}
		if client != "" {
			fields = append(fields, zap.String(fieldExchangeClient, client))
		}
		if f.cause != nil {
			fields = append(fields, zap.Error(f.cause))
		}
		ce.Write(fields...)
	}
	switch f.status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="embedtoken", charset="UTF-8"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", exchangeRetryAfter)
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	}
	writeJSON(w, f.status, map[string]string{"error": f.code, "error_description": f.desc})
}

// exchange runs one request: configuration, client authentication, the
// body, the grammar, the target policy, the subject token, minting. It sets
// *client once the client is authenticated.
func (e *exchangeServer) exchange(ctx context.Context, w http.ResponseWriter, r *http.Request, client *string) (*tokenResponse, *exchangeError) {
	m := e.current()
	switch {
	case m == nil:
		return nil, unavailableErr(descNoConfig, nil)
	case m.subjects == nil:
		return nil, &exchangeError{status: http.StatusNotFound, code: "not_found", outcome: outcomeNotFound, desc: descNotEnabled}
	case r.Method != http.MethodPost:
		return nil, &exchangeError{status: http.StatusMethodNotAllowed, code: "invalid_request", outcome: outcomeInvalidRequest, desc: descMethod}
	case r.URL.RawQuery != "":
		return nil, badRequest(descQuery)
	}
	c, f := m.authenticate(r)
	if f != nil {
		return nil, f
	}
	*client = c.Name
	form, f := readForm(ctx, w, r)
	if f != nil {
		return nil, f
	}
	req, f := parseExchange(form, c)
	if f != nil {
		return nil, f
	}
	api, f := m.target(req.target, c)
	if f != nil {
		return nil, f
	}
	sub, err := m.subjects.VerifySubject(ctx, req.subjectToken)
	if err == nil && sub.Issuer == m.cat.Minter.Issuer {
		err = ErrSubjectMinterToken // belt and braces: the verifier refuses them too
	}
	if err != nil {
		return nil, subjectFailed(ctx, err)
	}
	out, err := m.Issue(ctx, IssueRequest{
		Subject:   sub.Subject,
		API:       api.Name,
		Scopes:    req.scopes,
		Actor:     c.Name,
		PriorAct:  sub.Act,
		SubjectID: sub.ID,
	})
	if err != nil {
		return nil, issueFailed(ctx, err)
	}
	if ce := e.log.Check(zapcore.DebugLevel, "token exchanged"); ce != nil {
		ce.Write(zap.String(fieldExchangeClient, c.Name), zap.String(fieldAPI, out.API), zap.String(fieldJTI, out.JTI),
			zap.String(fieldSubjectIss, sub.Issuer), zap.String(fieldSubjectFP, Fingerprint(sub.Sub)))
	}
	return &tokenResponse{
		AccessToken:     out.Token,
		IssuedTokenType: TokenTypeAccessToken,
		TokenType:       "Bearer",
		ExpiresIn:       out.ExpiresIn,
		Scope:           strings.Join(out.Scope, " "),
	}, nil
}

// authenticate returns the exchange client of the request's HTTP Basic
// credentials: client id and secret form-urlencoded, then base64 (RFC 6749
// 2.3.1), the secret compared in constant time.
func (m *Minter) authenticate(r *http.Request) (*catalog.ExchangeClient, *exchangeError) {
	switch n := len(r.Header.Values("Authorization")); {
	case n == 0:
		return nil, badClient()
	case n > 1:
		return nil, badRequest(descSeveralAuth)
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil, badClient()
	}
	// Basic was used: the description no longer says to use it, and is
	// the same for an unknown client and a wrong secret (no oracle).
	id, err1 := url.QueryUnescape(user)
	secret, err2 := url.QueryUnescape(pass)
	if err1 != nil || err2 != nil {
		return nil, failedClient()
	}
	c := m.clients[id]
	if c == nil {
		exchangeDummySecret.Equal(secret)
		return nil, failedClient()
	}
	if !c.Secret.Equal(secret) {
		return nil, failedClient()
	}
	return c, nil
}

// readForm reads the bounded body and parses it as a form.
func readForm(ctx context.Context, w http.ResponseWriter, r *http.Request) (url.Values, *exchangeError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequest(descMediaType)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = http.NewResponseController(w).SetReadDeadline(deadline) // unsupported by recorders: fine
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxExchangeBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &exchangeError{status: http.StatusRequestEntityTooLarge, code: "invalid_request", outcome: outcomeTooLarge, desc: descTooLarge}
		}
		f := badRequest(descBadBody)
		f.cause = err
		return nil, f
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest(descBadForm)
	}
	return form, nil
}

// exchangeRequest is a request that passed the grammar.
type exchangeRequest struct {
	subjectToken string
	target       string   // the audience, or the resource
	scopes       []string // nil when no scope was requested
}

// parseExchange checks the grammar of DESIGN.md's "Token exchange". A
// parameter sent without a value counts as absent (RFC 6749 3.1).
func parseExchange(form url.Values, c *catalog.ExchangeClient) (*exchangeRequest, *exchangeError) {
	for _, k := range exchangeParams {
		if len(form[k]) > 1 {
			return nil, badRequest(descRepeated)
		}
	}
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	switch gt := get("grant_type"); {
	case gt == "":
		return nil, badRequest(descNoGrant)
	case gt != grantTokenExchange:
		return nil, &exchangeError{status: http.StatusBadRequest, code: "unsupported_grant_type", outcome: outcomeUnsupported, desc: descGrant}
	}
	if get("client_secret") != "" {
		return nil, badRequest(descClientSecret)
	}
	if id := get("client_id"); id != "" && id != c.Name {
		return nil, badRequest(descClientID)
	}
	if get("actor_token") != "" || get("actor_token_type") != "" {
		return nil, badRequest(descActor)
	}
	req := &exchangeRequest{subjectToken: get("subject_token")}
	if req.subjectToken == "" {
		return nil, badRequest(descNoSubject)
	}
	switch get("subject_token_type") {
	case TokenTypeAccessToken, TokenTypeJWT:
	case "":
		return nil, badRequest(descNoSubjectType)
	default:
		return nil, badRequest(descSubjectType)
	}
	switch get("requested_token_type") {
	case "", TokenTypeAccessToken, TokenTypeJWT:
	default:
		return nil, badRequest(descRequestedType)
	}
	auds, ress := nonEmpty(form["audience"]), nonEmpty(form["resource"])
	switch {
	case len(form["audience"]) > 1 || len(form["resource"]) > 1 || len(auds)+len(ress) > 1:
		return nil, badTarget(descSeveralTargets)
	case len(auds) == 1:
		req.target = auds[0]
	case len(ress) == 1:
		u, err := url.Parse(ress[0])
		if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(ress[0], "#") {
			return nil, badTarget(descResourceURI)
		}
		req.target = ress[0]
	default:
		return nil, badRequest(descNoTarget)
	}
	if sc := get("scope"); sc != "" {
		scopes, ok := parseScope(sc)
		if !ok {
			return nil, &exchangeError{status: http.StatusBadRequest, code: "invalid_scope", outcome: outcomeInvalidScope, desc: descScopeSyntax}
		}
		req.scopes = scopes
	}
	return req, nil
}

// target returns the API the request may have a token for: its audience is
// target, it is exposed, and the client may obtain it.
func (m *Minter) target(target string, c *catalog.ExchangeClient) (*catalog.API, *exchangeError) {
	api := m.cat.APIByAudience(target)
	switch {
	case api == nil:
		return nil, badTarget(descUnknownTarget)
	case !api.Exposed:
		return nil, badTarget(descNotExposedAPI)
	case !slices.Contains(c.Audiences, api.Audience):
		return nil, badTarget(descTargetForbidden)
	}
	return api, nil
}

// subjectFailed maps a SubjectVerifier error.
func subjectFailed(ctx context.Context, err error) *exchangeError {
	switch {
	case errors.Is(err, ErrSubjectUnavailable), ctx.Err() != nil:
		return unavailableErr(descUnavailable, err)
	case errors.Is(err, ErrSubjectMinterToken):
		return badSubject(descSubjectMinter, err)
	case errors.Is(err, ErrSubjectExpired):
		return badSubject(descSubjectExpired, err)
	case errors.Is(err, ErrSubjectToken):
		return badSubject(descSubjectInvalid, err)
	}
	return &exchangeError{status: http.StatusInternalServerError, code: "server_error", outcome: outcomeError, desc: descServerError, cause: err}
}

// issueFailed maps an Issue error.
func issueFailed(ctx context.Context, err error) *exchangeError {
	var ce *ClaimError
	switch {
	case errors.Is(err, ErrInvalidTarget):
		return badTarget(descTargetNotGrant)
	case errors.Is(err, ErrInvalidScope):
		return &exchangeError{status: http.StatusBadRequest, code: "invalid_scope", outcome: outcomeInvalidScope, desc: descScopeEmpty, cause: err}
	case errors.Is(err, ErrExpired):
		return badSubject(descSubjectExpired, err)
	case errors.As(err, &ce):
		return badSubject(descSubjectClaim, err)
	case errors.Is(err, ErrInvalidSubject):
		return badSubject(descSubjectInvalid, err)
	case ctx.Err() != nil:
		return unavailableErr(descUnavailable, err)
	}
	return &exchangeError{status: http.StatusInternalServerError, code: "server_error", outcome: outcomeError, desc: descServerError, cause: err}
}

// parseScope splits a scope parameter (RFC 6749 3.3: scope-tokens of
// %x21 / %x23-5B / %x5D-7E separated by single spaces).
func parseScope(s string) ([]string, bool) {
	parts := strings.Split(s, " ")
	for _, p := range parts {
		if p == "" {
			return nil, false
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return nil, false
			}
		}
	}
	return parts, true
}

func nonEmpty(vs []string) []string {
	var out []string
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
