package unwrap

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Reason is the stable, precise cause of an outcome. It goes to logs (field
// "reason") and to the reason label of the request metric; clients never
// see it. The set of values is fixed: no value ever holds token text.
type Reason string

// Reasons.
const (
	ReasonOK              Reason = "ok"
	ReasonPublic          Reason = "public_path"
	ReasonMissingToken    Reason = "missing_token"
	ReasonOtherScheme     Reason = "other_scheme"
	ReasonMalformedHeader Reason = "malformed_header"
	ReasonSeveralHeaders  Reason = "several_headers"
	ReasonQueryToken      Reason = "query_token"
	ReasonBadPath         Reason = "bad_path"
	ReasonBadBody         Reason = "bad_request_body"
	ReasonTooLarge        Reason = "too_large"
	ReasonMalformed       Reason = "malformed"
	ReasonDuplicateMember Reason = "duplicate_member"
	ReasonClaimType       Reason = "claim_type"
	ReasonCrit            Reason = "crit"
	ReasonAlgNotAllowed   Reason = "alg_not_allowed"
	ReasonTyp             Reason = "typ"
	ReasonUnknownIssuer   Reason = "unknown_issuer"
	ReasonUnknownKid      Reason = "unknown_kid"
	ReasonAmbiguousKey    Reason = "ambiguous_key"
	ReasonKeyAlg          Reason = "key_alg_mismatch"
	ReasonSignature       Reason = "signature"
	ReasonExpired         Reason = "expired"
	ReasonNotYetValid     Reason = "not_yet_valid"
	ReasonIssuedInFuture  Reason = "issued_in_future"
	ReasonAudience        Reason = "audience"
	ReasonMissingClaim    Reason = "missing_claim"
	ReasonNotCaller       Reason = "not_a_caller"
	ReasonNotExposed      Reason = "not_exposed"
	ReasonOpaque          Reason = "opaque_token"
	ReasonEmbeddedType    Reason = "embedded_claim_type"
	ReasonNoEmbeddedMap   Reason = "embedded_map_missing"
	ReasonPredatesAPI     Reason = "inner_missing_renew"
	ReasonNoScope         Reason = "inner_missing_scope"
	ReasonInnerExpired    Reason = "inner_expired"
	ReasonNestedExpired   Reason = "nested_expired"
	ReasonExpiresSoon     Reason = "expires_too_soon"
	ReasonInnerInvalid    Reason = "inner_invalid"
	ReasonSubjectMismatch Reason = "inner_subject_mismatch"
	ReasonRouteScope      Reason = "route_scope"
	ReasonKeysUnavailable Reason = "keys_unavailable"
	ReasonDependency      Reason = "dependency_unavailable"
	ReasonInactive        Reason = "inactive_token"
	ReasonTokenUse        Reason = "token_use"
	ReasonIntrospection   Reason = "introspection_unavailable"
	ReasonExchangeRefused Reason = "exchange_refused"
	ReasonExchangeTarget  Reason = "exchange_target_refused"
	ReasonExchangeFailed  Reason = "exchange_unavailable"
	ReasonExchangeInvalid Reason = "exchange_token_invalid"
	ReasonExchangeClient  Reason = "exchange_client_refused"
	ReasonUpstreamRefused Reason = "upstream_refused"
	ReasonUpstreamTimeout Reason = "upstream_timeout"
	ReasonClientGone      Reason = "client_gone"
	ReasonPanic           Reason = "panic"
	ReasonHeadersTooLarge Reason = "headers_too_large"
)

// Sentinel errors that Verify's errors match with errors.Is.
var (
	// ErrInvalidRequest: the request is malformed (400 invalid_request).
	ErrInvalidRequest = errors.New("unwrap: invalid request")
	// ErrUnauthorized: no bearer token (401 without an error code).
	ErrUnauthorized = errors.New("unwrap: unauthorized")
	// ErrInvalidToken: a token failed verification (401 invalid_token).
	ErrInvalidToken = errors.New("unwrap: invalid token")
	// ErrInsufficientScope: the token is valid but not enough here (403).
	ErrInsufficientScope = errors.New("unwrap: insufficient scope")
	// ErrUnavailable: a dependency failed; the token may be fine (503).
	ErrUnavailable = errors.New("unwrap: temporarily unavailable")
)

// Error codes: the RFC 6750 error values, and this contract's body codes.
const (
	codeInvalidRequest    = "invalid_request"
	codeInvalidToken      = "invalid_token"
	codeInsufficientScope = "insufficient_scope"
	codeUnauthorized      = "unauthorized"
	codeUnavailable       = "temporarily_unavailable"
	codeBadGateway        = "bad_gateway"
	codeGatewayTimeout    = "gateway_timeout"
	codeServerError       = "server_error"
	codeHeadersTooLarge   = "request_header_fields_too_large"
)

// Public descriptions. Every cryptographic or claim failure gets the same
// one, so that the answer is no oracle.
const (
	descInvalid       = "the access token is not valid here"
	descPredates      = "token predates this API: renew it"
	descInnerExpired  = "embedded token expired: renew"
	descNotExposed    = "reachable only through its callers"
	descNoScope       = "the access token does not grant this API"
	descRouteScope    = "the access token does not grant this route"
	descUnavailable   = "a dependency is unavailable; retry later"
	descMissing       = "a bearer token is required"
	descBadRequest    = "malformed request"
	descBadGateway    = "the upstream service is unreachable"
	descGatewayTimout = "the upstream service did not answer in time"
	descServerError   = "internal error"
)

// Failure is the error of a request or token that is refused. Status, Code,
// Description and Scope are what the client sees; Reason and Err are for
// logs and metrics only.
type Failure struct {
	Status      int
	Code        string
	Description string
	// Scope is the scope attribute of a 403 challenge, or empty.
	Scope string
	// Reason is the precise cause.
	Reason Reason
	// Inner is true when the failure concerns the inner token.
	Inner bool
	// Source is the trust name (or "minter", "introspection") whose token
	// was refused, once the issuer was recognized; for logs.
	Source string
	// Err is the internal cause, or nil. It holds no token text.
	Err error
}

func (f *Failure) Error() string {
	s := "unwrap: " + string(f.Reason)
	if f.Inner {
		s = "unwrap: inner token: " + string(f.Reason)
	}
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	return s
}

// Unwrap returns the internal cause.
func (f *Failure) Unwrap() error { return f.Err }

// Is matches the sentinel errors of the package by status and code.
func (f *Failure) Is(target error) bool {
	switch target {
	case ErrInvalidRequest:
		return f.Code == codeInvalidRequest
	case ErrUnauthorized:
		return f.Code == codeUnauthorized
	case ErrInvalidToken:
		return f.Code == codeInvalidToken
	case ErrInsufficientScope:
		return f.Code == codeInsufficientScope
	case ErrUnavailable:
		return f.Code == codeUnavailable
	}
	return false
}

func invalid(r Reason, err error) *Failure {
	return &Failure{Status: http.StatusUnauthorized, Code: codeInvalidToken, Description: descInvalid, Reason: r, Err: err}
}

func badRequest(r Reason) *Failure {
	return &Failure{Status: http.StatusBadRequest, Code: codeInvalidRequest, Description: descBadRequest, Reason: r}
}

func unavailable(r Reason, err error) *Failure {
	return &Failure{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Description: descUnavailable, Reason: r, Err: err}
}

func insufficient(r Reason, desc string, scopes []string) *Failure {
	return &Failure{Status: http.StatusForbidden, Code: codeInsufficientScope, Description: desc, Scope: strings.Join(scopes, " "), Reason: r}
}

// asFailure turns any error into a Failure; an unexpected error is an
// invalid token (the safe answer).
func asFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return invalid(ReasonMalformed, err)
}

// retryAfterSeconds is the Retry-After of a 503.
const retryAfterSeconds = 5

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
}

// writeFailure renders f: the RFC 6750 challenge for 400, 401 and 403, a
// Retry-After for 503, and the JSON body with the request id. It never
// writes token text: every value comes from constants and configuration.
func writeFailure(w http.ResponseWriter, realm, requestID string, f *Failure) {
	h := w.Header()
	switch f.Status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		h.Set("WWW-Authenticate", challenge(realm, f))
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	writeJSONError(w, f.Status, requestID, f.Code, f.Description)
}

// writeJSONError writes an error body with status.
func writeJSONError(w http.ResponseWriter, status int, requestID, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(errorBody{Error: code, Description: desc, RequestID: requestID})
	_, _ = w.Write(append(b, '\n'))
}

// challenge builds the WWW-Authenticate value. A missing token (or another
// scheme) gets the realm only (RFC 6750 3.1).
func challenge(realm string, f *Failure) string {
	var b strings.Builder
	b.WriteString(`Bearer realm=`)
	b.WriteString(quote(realm))
	if f.Code == codeUnauthorized {
		return b.String()
	}
	b.WriteString(`, error=`)
	b.WriteString(quote(f.Code))
	if f.Description != "" {
		b.WriteString(`, error_description=`)
		b.WriteString(quote(f.Description))
	}
	if f.Scope != "" {
		b.WriteString(`, scope=`)
		b.WriteString(quote(f.Scope))
	}
	return b.String()
}

// quote makes an RFC 9110 quoted-string; characters RFC 6750 forbids in
// these attributes (quotes, backslashes, controls) are dropped.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c >= 0x80 {
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}
