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
