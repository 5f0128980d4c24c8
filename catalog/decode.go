package catalog

import (
	"github.com/hashicorp/hcl/v2"
)

// The raw* types mirror the HCL schema one to one. gohcl decodes each file
// into them; build.go turns them into the model and checks them. They never
// leave this package. No field has a `remain` tag: unknown attributes and
// blocks are errors (STYLE 16).

type rawFile struct {
	Minters         []*rawMinter         `hcl:"minter,block"`
	APIs            []*rawAPI            `hcl:"api,block"`
	Sidecars        []*rawSidecar        `hcl:"sidecar,block"`
	Trusts          []*rawTrust          `hcl:"trust,block"`
	Hooks           []*rawHook           `hcl:"hook,block"`
	ExchangeClients []*rawExchangeClient `hcl:"exchange_client,block"`
	Exchanges       []*rawExchange       `hcl:"exchange,block"`
}

type rawMinter struct {
	Issuer           string         `hcl:"issuer"`
	Claim            *string        `hcl:"claim,optional"`
	JWKSURL          *string        `hcl:"jwks_url,optional"`
	JWKSFile         *string        `hcl:"jwks_file,optional"`
	CAFile           *string        `hcl:"ca_file,optional"`
	Algorithms       hcl.Expression `hcl:"algorithms,optional"`
	ActiveKey        *string        `hcl:"active_key,optional"`
	DefaultLifetime  *string        `hcl:"default_lifetime,optional"`
	MaxEmbeddedBytes *int           `hcl:"max_embedded_bytes,optional"`
	OuterBaseBytes   *int           `hcl:"outer_base_bytes,optional"`
	MintFor          *string        `hcl:"mint_for,optional"`
	SigningKeys      []*rawKey      `hcl:"signing_key,block"`
	DefRange         hcl.Range      `hcl:",def_range"`

	IssuerRange   hcl.Range `hcl:"issuer,attr_value_range"`
	ClaimRange    hcl.Range `hcl:"claim,attr_value_range"`
	URLRange      hcl.Range `hcl:"jwks_url,attr_value_range"`
	FileRange     hcl.Range `hcl:"jwks_file,attr_value_range"`
	AlgRange      hcl.Range `hcl:"algorithms,attr_value_range"`
	ActiveRange   hcl.Range `hcl:"active_key,attr_value_range"`
	LifetimeRange hcl.Range `hcl:"default_lifetime,attr_value_range"`
	MaxRange      hcl.Range `hcl:"max_embedded_bytes,attr_value_range"`
	BaseRange     hcl.Range `hcl:"outer_base_bytes,attr_value_range"`
	MintForRange  hcl.Range `hcl:"mint_for,attr_value_range"`
}

type rawKey struct {
	ID             string    `hcl:"kid,label"`
	Algorithm      string    `hcl:"algorithm"`
	PrivateKeyFile string    `hcl:"private_key_file"`
	DefRange       hcl.Range `hcl:",def_range"`
	LabelRange     hcl.Range `hcl:"kid,label_range"`
	AlgRange       hcl.Range `hcl:"algorithm,attr_value_range"`
	FileRange      hcl.Range `hcl:"private_key_file,attr_value_range"`
}

type rawAPI struct {
	Name          string         `hcl:"name,label"`
	Audience      string         `hcl:"audience"`
	Scopes        hcl.Expression `hcl:"scopes,optional"`
	Claims        hcl.Expression `hcl:"claims,optional"`
	Lifetime      *string        `hcl:"lifetime,optional"`
	Calls         hcl.Expression `hcl:"calls,optional"`
	Exposed       *bool          `hcl:"exposed,optional"`
	DefRange      hcl.Range      `hcl:",def_range"`
	LabelRange    hcl.Range      `hcl:"name,label_range"`
	AudienceRange hcl.Range      `hcl:"audience,attr_value_range"`
	ScopesRange   hcl.Range      `hcl:"scopes,attr_value_range"`
	ClaimsRange   hcl.Range      `hcl:"claims,attr_value_range"`
	LifetimeRange hcl.Range      `hcl:"lifetime,attr_value_range"`
	CallsRange    hcl.Range      `hcl:"calls,attr_value_range"`
}

type rawRoute struct {
	PathPrefix  string         `hcl:"path_prefix"`
	Methods     []string       `hcl:"methods,optional"`
	Scopes      hcl.Expression `hcl:"scopes"`
	DefRange    hcl.Range      `hcl:",def_range"`
	PrefixRange hcl.Range      `hcl:"path_prefix,attr_value_range"`
	MethodRange hcl.Range      `hcl:"methods,attr_value_range"`
	ScopesRange hcl.Range      `hcl:"scopes,attr_value_range"`
}

type rawTLS struct {
	CertFile     string    `hcl:"cert_file"`
	KeyFile      string    `hcl:"key_file"`
	ClientCAFile *string   `hcl:"client_ca_file,optional"`
	DefRange     hcl.Range `hcl:",def_range"`
	CertRange    hcl.Range `hcl:"cert_file,attr_value_range"`
	KeyRange     hcl.Range `hcl:"key_file,attr_value_range"`
}

type rawSidecar struct {
	API             string      `hcl:"api"`
	Listen          string      `hcl:"listen,optional"`
	Upstream        string      `hcl:"upstream,optional"`
	AuthzListen     *string     `hcl:"authz_listen,optional"`
	AuthzGRPCListen *string     `hcl:"authz_grpc_listen,optional"`
	AdminListen     *string     `hcl:"admin_listen,optional"`
	Leeway          *string     `hcl:"leeway,optional"`
	MaxTokenBytes   *int        `hcl:"max_token_bytes,optional"`
	PublicPaths     []string    `hcl:"public_paths,optional"`
	CacheEntries    *int        `hcl:"cache_entries,optional"`
	UpstreamTimeout *string     `hcl:"upstream_timeout,optional"`
	ShutdownTimeout *string     `hcl:"shutdown_timeout,optional"`
	StripHeaders    []string    `hcl:"strip_headers,optional"`
	UpstreamHost    *string     `hcl:"upstream_host,optional"`
	AccessLog       *bool       `hcl:"access_log,optional"`
	MinRemaining    *string     `hcl:"min_remaining,optional"`
	MaxConns        *int        `hcl:"max_connections,optional"`
	MaxRequests     *int        `hcl:"max_requests,optional"`
	UpIdleTimeout   *string     `hcl:"upstream_idle_timeout,optional"`
	MaxConnRange    hcl.Range   `hcl:"max_connections,attr_value_range"`
	MaxReqRange     hcl.Range   `hcl:"max_requests,attr_value_range"`
	UpIdleRange     hcl.Range   `hcl:"upstream_idle_timeout,attr_value_range"`
	Routes          []*rawRoute `hcl:"route,block"`
	TLS             []*rawTLS   `hcl:"tls,block"`
	DefRange        hcl.Range   `hcl:",def_range"`

	APIRange      hcl.Range `hcl:"api,attr_value_range"`
	ListenRange   hcl.Range `hcl:"listen,attr_value_range"`
	UpstreamRange hcl.Range `hcl:"upstream,attr_value_range"`
	AdminRange    hcl.Range `hcl:"admin_listen,attr_value_range"`
	AuthzRange    hcl.Range `hcl:"authz_listen,attr_value_range"`
	AuthzGRPCRng  hcl.Range `hcl:"authz_grpc_listen,attr_value_range"`
	LeewayRange   hcl.Range `hcl:"leeway,attr_value_range"`
	MaxTokRange   hcl.Range `hcl:"max_token_bytes,attr_value_range"`
	PublicRange   hcl.Range `hcl:"public_paths,attr_value_range"`
	CacheRange    hcl.Range `hcl:"cache_entries,attr_value_range"`
	UpTimeRange   hcl.Range `hcl:"upstream_timeout,attr_value_range"`
	ShutRange     hcl.Range `hcl:"shutdown_timeout,attr_value_range"`
	StripRange    hcl.Range `hcl:"strip_headers,attr_value_range"`
	UpHostRange   hcl.Range `hcl:"upstream_host,attr_value_range"`
	MinRemRange   hcl.Range `hcl:"min_remaining,attr_value_range"`
}

type rawTrust struct {
	Name                  string         `hcl:"name,label"`
	Issuer                string         `hcl:"issuer"`
	JWKSURL               *string        `hcl:"jwks_url,optional"`
	JWKSFile              *string        `hcl:"jwks_file,optional"`
	IntrospectionURL      *string        `hcl:"introspection_url,optional"`
	CAFile                *string        `hcl:"ca_file,optional"`
	Algorithms            hcl.Expression `hcl:"algorithms,optional"`
	Typ                   []string       `hcl:"typ,optional"`
	Claim                 hcl.Expression `hcl:"claim,optional"`
	Audience              []string       `hcl:"audience,optional"`
	TokenLifetime         *string        `hcl:"token_lifetime,optional"`
	JWKSRefresh           *string        `hcl:"jwks_refresh,optional"`
	JWKSMinRefetch        *string        `hcl:"jwks_min_refetch,optional"`
	IntrospectionClientID *string        `hcl:"introspection_client_id,optional"`
	IntrospectionSecret   hcl.Expression `hcl:"introspection_secret,optional"`
	IntrospectionCache    *string        `hcl:"introspection_cache,optional"`
	TokenPrefix           *string        `hcl:"token_prefix,optional"`
	DefRange              hcl.Range      `hcl:",def_range"`
	LabelRange            hcl.Range      `hcl:"name,label_range"`

	IssuerRange   hcl.Range `hcl:"issuer,attr_value_range"`
	URLRange      hcl.Range `hcl:"jwks_url,attr_value_range"`
	IntroRange    hcl.Range `hcl:"introspection_url,attr_value_range"`
	AlgRange      hcl.Range `hcl:"algorithms,attr_value_range"`
	TypRange      hcl.Range `hcl:"typ,attr_value_range"`
	LifetimeRange hcl.Range `hcl:"token_lifetime,attr_value_range"`
	RefreshRange  hcl.Range `hcl:"jwks_refresh,attr_value_range"`
	RefetchRange  hcl.Range `hcl:"jwks_min_refetch,attr_value_range"`
	ICacheRange   hcl.Range `hcl:"introspection_cache,attr_value_range"`
}

type rawHook struct {
	Listen       string         `hcl:"listen"`
	PublicListen *string        `hcl:"public_listen,optional"`
	AdminListen  *string        `hcl:"admin_listen,optional"`
	APIKeyHeader *string        `hcl:"api_key_header,optional"`
	APIKey       hcl.Expression `hcl:"api_key,optional"`
	Generic      *bool          `hcl:"generic,optional"`
	Okta         *bool          `hcl:"okta,optional"`
	Timeout      *string        `hcl:"timeout,optional"`
	TLS          []*rawTLS      `hcl:"tls,block"`
	MaxConns     *int           `hcl:"max_connections,optional"`
	MaxConnRange hcl.Range      `hcl:"max_connections,attr_value_range"`
	DefRange     hcl.Range      `hcl:",def_range"`

	ListenRange  hcl.Range `hcl:"listen,attr_value_range"`
	PublicRange  hcl.Range `hcl:"public_listen,attr_value_range"`
	AdminRange   hcl.Range `hcl:"admin_listen,attr_value_range"`
	HeaderRange  hcl.Range `hcl:"api_key_header,attr_value_range"`
	TimeoutRange hcl.Range `hcl:"timeout,attr_value_range"`
}

type rawExchangeClient struct {
	Name          string         `hcl:"name,label"`
	Secret        hcl.Expression `hcl:"secret,optional"`
	SecretFile    *string        `hcl:"secret_file,optional"`
	Audiences     hcl.Expression `hcl:"audiences"`
	DefRange      hcl.Range      `hcl:",def_range"`
	LabelRange    hcl.Range      `hcl:"name,label_range"`
	AudienceRange hcl.Range      `hcl:"audiences,attr_value_range"`
}

type rawExchange struct {
	TokenURL      string         `hcl:"token_url"`
	ClientID      string         `hcl:"client_id"`
	Secret        hcl.Expression `hcl:"secret,optional"`
	SecretFile    *string        `hcl:"secret_file,optional"`
	CAFile        *string        `hcl:"ca_file,optional"`
	DefRange      hcl.Range      `hcl:",def_range"`
	TokenURLRange hcl.Range      `hcl:"token_url,attr_value_range"`
	ClientIDRange hcl.Range      `hcl:"client_id,attr_value_range"`
}
