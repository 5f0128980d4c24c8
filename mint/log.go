package mint

// Log field keys. Every failure branch logs a stable reason value.
const (
	fieldReason     = "reason"
	fieldClient     = "client_id"
	fieldAPIs       = "apis"
	fieldJTIs       = "jtis"
	fieldKID        = "kid"
	fieldSubjectFP  = "sub_fp"
	fieldEndpoint   = "endpoint"
	fieldBytes      = "embedded_bytes"
	fieldBudget     = "max_embedded_bytes"
	fieldDuration   = "duration"
	fieldGrantTypes = "grant_types"

	fieldExchangeClient = "exchange_client"
	fieldAPI            = "api"
	fieldJTI            = "jti"
	fieldSubjectJTI     = "subject_jti"
	fieldSubjectIss     = "subject_iss"
	fieldStatus         = "status"
	fieldCode           = "error"
	fieldDescription    = "description"
	fieldRemoteAddr     = "remote_addr"
	fieldSuppressed     = "suppressed" // log lines left out by a rate limit since the last one
)

// Reasons: the stable values of the reason field and of the outcome label of
// the hook request counter.
const (
	reasonOK           = "ok"
	reasonUnauthorized = "unauthorized"
	reasonBadRequest   = "bad_request"
	reasonTooLarge     = "too_large"
	reasonMediaType    = "unsupported_media_type"
	reasonDenied       = "denied"
	reasonTimeout      = "timeout"
	reasonError        = "error"
	reasonOverBudget   = "over_budget"
)

// Outcomes of token exchange requests: the stable values of the outcome
// label of the exchange counter and of the reason field of its logs. Most
// are the RFC 6749 error code answered.
const (
	outcomeOK             = "ok"
	outcomeInvalidRequest = "invalid_request"
	outcomeInvalidSubject = "invalid_subject"
	outcomeInvalidClient  = "invalid_client"
	outcomeUnsupported    = "unsupported_grant_type"
	outcomeInvalidTarget  = "invalid_target"
	outcomeInvalidScope   = "invalid_scope"
	outcomeTooLarge       = "too_large"
	outcomeUnavailable    = "unavailable"
	outcomeNotFound       = "not_found"
	outcomeError          = "error"
)
