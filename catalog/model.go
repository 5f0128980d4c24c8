package catalog

import (
	"crypto"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Catalog is a validated, immutable configuration: the minter, the APIs and
// their call graph, and whichever of the sidecar, hook, trust, exchange_client
// and exchange blocks the loaded files declare. A Catalog is never modified
// after Load returns it, so it is safe for concurrent use; reloading builds a
// new one.
type Catalog struct {
	// Minter is the minter block. It is never nil in a Catalog that Load
	// returned without errors.
	Minter *Minter
	// APIs are the api blocks, sorted by name.
	APIs []*API
	// Trusts are the trust blocks in declaration order.
	Trusts []*Trust
	// Sidecar is the sidecar block, or nil.
	Sidecar *Sidecar
	// Hook is the hook block, or nil.
	Hook *Hook
	// ExchangeClients are the exchange_client blocks, sorted by name.
	ExchangeClients []*ExchangeClient
	// Exchange is the exchange block (a sidecar's fallback), or nil.
	Exchange *Exchange
	// Files are the configuration files read, in the order they were read.
	Files []string
	// KeyFiles are the key, JWKS and CA files the configuration names; a
	// reload watcher watches them with Files.
	KeyFiles []string

	apiByName     map[string]*API
	apiByAudience map[string]*API
}

// API returns the API declared with name, or nil.
func (c *Catalog) API(name string) *API { return c.apiByName[name] }

// APIByAudience returns the API whose audience is aud, or nil.
func (c *Catalog) APIByAudience(aud string) *API { return c.apiByAudience[aud] }

// Roots returns the exposed APIs: those whose tokens sit at the top level of
// an outer token. They are sorted by name.
func (c *Catalog) Roots() []*API {
	var out []*API
	for _, a := range c.APIs {
		if a.Exposed {
			out = append(out, a)
		}
	}
	return out
}

// Callers returns the APIs whose calls name api, sorted by name.
func (c *Catalog) Callers(api string) []*API {
	var out []*API
	for _, a := range c.APIs {
		for _, callee := range a.Calls {
			if callee == api {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// MintFor says which APIs get an inner token.
type MintFor string

const (
	// MintForScope mints for every API whose scopes meet the granted scopes.
	MintForScope MintFor = "scope"
	// MintForAudience additionally requires the API's audience to be granted.
	MintForAudience MintFor = "audience"
)

// Defaults used where the configuration leaves a value out.
const (
	DefaultClaim            = "embedded_tokens"
	DefaultLifetime         = 5 * time.Minute
	DefaultMaxEmbeddedBytes = 6144
	DefaultOuterBaseBytes   = 1024
	DefaultLeeway           = 30 * time.Second
	DefaultMaxTokenBytes    = 16384
	DefaultCacheEntries     = 10000
	DefaultUpstreamTimeout  = 30 * time.Second
	DefaultShutdownTimeout  = 15 * time.Second
	DefaultJWKSRefresh      = 5 * time.Minute
	DefaultJWKSMinRefetch   = 10 * time.Second
	DefaultIntrospection    = 60 * time.Second
	DefaultHookTimeout      = 2 * time.Second
	DefaultAPIKeyHeader     = "X-Embedtoken-Key"
	// DefaultSidecarAdminListen and DefaultHookAdminListen are where the
	// admin listeners (/healthz, /readyz, /metrics) bind when the
	// configuration does not say: loopback only. A sidecar's
	// admin_listen = "" turns its admin listener off.
	DefaultSidecarAdminListen = "127.0.0.1:9901"
	DefaultHookAdminListen    = "127.0.0.1:9900"
	// MaxLifetime bounds every lifetime in the catalog: an inner token is
	// meant to be short-lived.
	MaxLifetime = 24 * time.Hour
	// MaxClaimValueBytes bounds a subject claim value copied into a token.
	MaxClaimValueBytes = 1024
)

// Minter is the minter block: who signs inner tokens and how.
type Minter struct {
	// Issuer is the iss of every inner token.
	Issuer string
	// Claim is the name of the claim that holds embedded tokens.
	Claim string
	// JWKSURL or JWKSFile (exactly one) is where verifiers get the minter's
	// public keys. JWKSFile is an absolute or working-directory path.
	JWKSURL  string
	JWKSFile string
	// CAFile holds extra roots for https URLs, or is empty.
	CAFile string
	// Algorithms are the algorithms accepted for inner tokens.
	Algorithms []jose.SignatureAlgorithm
	// ActiveKey is the kid that signs; empty when there are no signing keys.
	ActiveKey string
	// DefaultLifetime applies to APIs that declare no lifetime.
	DefaultLifetime time.Duration
	// MaxEmbeddedBytes is the size budget of the embedded map.
	MaxEmbeddedBytes int
	// OuterBaseBytes is the assumed size of the issuer's own part of an
	// outer token, for size reports.
	OuterBaseBytes int
	// MintFor says which APIs get a token.
	MintFor MintFor
	// SigningKeys are the signing_key blocks, in declaration order.
	SigningKeys []*SigningKey
}

// Key returns the signing key with kid, or nil.
func (m *Minter) Key(kid string) *SigningKey {
	for _, k := range m.SigningKeys {
		if k.ID == kid {
			return k
		}
	}
	return nil
}

// SigningKey is a signing_key block. Its private key is loaded only when
// Options.LoadPrivateKeys is set; the public key is then derived from it.
type SigningKey struct {
	// ID is the kid.
	ID string
	// Algorithm is the JWS algorithm the key signs with.
	Algorithm jose.SignatureAlgorithm
	// PrivateKeyFile is the resolved path of the PKCS#8 PEM file.
	PrivateKeyFile string
	// Private is the loaded key, or nil when keys were not loaded or the file
	// is absent (check only warns then).
	Private crypto.Signer
	// Public is the public JWK (kid, alg, use sig), valid when Private is set.
	Public jose.JSONWebKey
}

// API is an api block: an upstream API and what its tokens may carry.
type API struct {
	Name     string
	Audience string
	// Scopes the API may receive; empty means every authenticated subject
	// gets a token with no scope claim.
	Scopes []string
	// Claims are the subject claims copied into its tokens.
	Claims []string
	// Lifetime of its tokens (the minter's default when not declared).
	Lifetime time.Duration
	// Calls names the APIs whose tokens its token embeds, in declared order.
	Calls []string
	// Exposed APIs sit at the top level of the outer token; others appear
	// only nested inside their callers' tokens. Default true.
	Exposed bool
}

// HasScope reports whether s is one of the API's scopes.
func (a *API) HasScope(s string) bool {
	for _, x := range a.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// Route is a sidecar route block: per-route scope requirements.
type Route struct {
	PathPrefix string
	// Methods the route applies to; empty means all.
	Methods []string
	// Scopes: the inner token needs one of these.
	Scopes []string
}

// TLS is a tls block for a listener.
type TLS struct {
	CertFile     string
	KeyFile      string
	ClientCAFile string
}

// Sidecar is the sidecar block.
type Sidecar struct {
	API string
	// Listen and Upstream are the proxy's; both empty in a decision-only
	// sidecar (one with an authz listener).
	Listen   string
	Upstream string
	// AuthzListen serves the HTTP decision endpoints (forward auth, Envoy
	// HTTP ext_authz); AuthzGRPCListen Envoy's gRPC ext_authz. Empty: off.
	AuthzListen     string
	AuthzGRPCListen string
	// AdminListen is where /healthz, /readyz and /metrics are served:
	// DefaultSidecarAdminListen when not configured, empty when turned off.
	AdminListen     string
	Leeway          time.Duration
	MaxTokenBytes   int
	PublicPaths     []string
	CacheEntries    int
	UpstreamTimeout time.Duration
	ShutdownTimeout time.Duration
	StripHeaders    []string
	// AccessLog: one log line per request (default true).
	AccessLog bool
	// MinRemaining: a token whose outer exp, inner exp or nested exp is
	// closer than this is refused ("token expires too soon: renew"), or
	// refreshed by exchange at a first hop with an exchange block. If
	// zero, only expiry counts.
	MinRemaining time.Duration
	Routes       []Route
	TLS          *TLS

	// UpstreamHost is the Host header forwarded: UpstreamHostClient (the
	// client's, the default) or UpstreamHostUpstream (the upstream URL's).
	UpstreamHost string
	Limits
}

// The values of sidecar.upstream_host.
const (
	UpstreamHostClient   = "client"
	UpstreamHostUpstream = "upstream"
)

// Trust is a trust block: an issuer whose access tokens are accepted as
// outer tokens, verified by JWKS or, for opaque tokens, by introspection.
type Trust struct {
	Name   string
	Issuer string
	// Exactly one of JWKSURL, JWKSFile and IntrospectionURL is set.
	JWKSURL          string
	JWKSFile         string
	IntrospectionURL string
	CAFile           string
	// Algorithms accepted for this issuer's tokens (JWKS trusts).
	Algorithms []jose.SignatureAlgorithm
	// Typ are the accepted typ headers, lower-cased without "application/";
	// "" means a token without typ is accepted.
	Typ []string
	// Claim is the path of the embedded map in the outer token's claims.
	Claim []string
	// Audience, when not empty: the outer aud must contain one of these.
	Audience []string
	// TokenLifetime is the issuer's access-token lifetime, or zero.
	TokenLifetime  time.Duration
	JWKSRefresh    time.Duration
	JWKSMinRefetch time.Duration

	IntrospectionClientID string
	IntrospectionSecret   Secret
	IntrospectionCache    time.Duration
	TokenPrefix           string
}

// Introspection reports whether the trust verifies opaque tokens by
// introspection rather than JWTs by JWKS.
func (t *Trust) Introspection() bool { return t.IntrospectionURL != "" }

// Hook is the hook block: the issuer plugin's listeners.
type Hook struct {
	Listen       string
	PublicListen string // "" when not needed: see PublicListenerNeeded
	AdminListen  string
	APIKeyHeader string
	APIKey       Secret
	// APIKeyAt is where api_key is set (or the hook block, when it is
	// not), as file:line:col, for the refusal of an empty key at start.
	APIKeyAt string
	Generic  bool
	Okta     bool // serve POST /hooks/okta (Okta token inline hook)
	Timeout  time.Duration
	TLS      *TLS
	// MaxConnections bounds the open connections of each of the hook's
	// public and private listeners (see Limits).
	MaxConnections int
}

// ExchangeClient is an exchange_client block: who may use the token
// exchange endpoint and for which audiences.
type ExchangeClient struct {
	Name      string
	Secret    Secret
	Audiences []string
}

// Exchange is the exchange block of a sidecar's configuration.
type Exchange struct {
	TokenURL string
	ClientID string
	Secret   Secret
	CAFile   string
}
