package unwrap

// Log field keys. Every log line of the package uses these, so that
// dashboards and log queries can rely on them.
const (
	fieldRequestID = "request_id"
	fieldReason    = "reason"
	fieldStatus    = "status"
	fieldTokenKind = "token_kind" // "outer" or "inner"
	fieldIssuer    = "issuer"     // a trust name or "minter": never token text
	fieldKid       = "kid"
	fieldJTI       = "jti"
	fieldTokenFP   = "token_fp" // first 8 hex characters of the token's SHA-256
	fieldMethod    = "method"
	fieldPath      = "path"
	fieldAPI       = "api"
	fieldDuration  = "duration"
	fieldCached    = "cached"
	fieldKeys      = "keys"
	fieldSource    = "source"
	fieldMaxAge    = "max_age"
	fieldLimit     = "limit"
	fieldOutcome   = "outcome"
	fieldClaim     = "claim"
)
