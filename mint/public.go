package mint

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Paths of the public listener.
const (
	JWKSPath          = "/.well-known/jwks.json"
	MetadataPath      = "/.well-known/oauth-authorization-server"
	TokenEndpointPath = "/oauth2/token"
)

// Token exchange identifiers advertised in the metadata (RFC 8693).
const grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// NewPublicMux returns the public listener's mux: GET JWKSPath (the
// minter's public keys, active and retired, cacheable) and GET MetadataPath
// (RFC 8414). The caller may register more handlers on it — the token
// exchange endpoint, NewExchangeHandler, at TokenEndpointPath.
func NewPublicMux(current Current, opts *HandlerOptions) *http.ServeMux {
	opts = opts.orZero()
	maxAge := opts.JWKSMaxAge
	if maxAge <= 0 {
		maxAge = DefaultJWKSMaxAge
	}
	cacheControl := fmt.Sprintf("public, max-age=%d", int(maxAge/time.Second))
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+JWKSPath, func(w http.ResponseWriter, r *http.Request) {
		m := current()
		if m == nil {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", cacheControl)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(m.JWKS())
	})
	mux.HandleFunc("GET "+MetadataPath, func(w http.ResponseWriter, r *http.Request) {
		m := current()
		if m == nil {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
			return
		}
		base := publicBase(m, opts.PublicURL, r)
		md := metadata{
			Issuer:            m.cat.Minter.Issuer,
			JWKSURI:           base + JWKSPath,
			TokenEndpoint:     base + TokenEndpointPath,
			GrantTypes:        []string{grantTokenExchange},
			TokenEndpointAuth: []string{"client_secret_basic"},
			ResponseTypes:     []string{},
		}
		if m.cat.Minter.JWKSURL != "" {
			md.JWKSURI = m.cat.Minter.JWKSURL
		}
		b, err := marshalCompact(md)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", cacheControl)
		_, _ = w.Write(b)
	})
	return mux
}

// metadata is the RFC 8414 authorization server metadata of the minter.
type metadata struct {
	Issuer            string   `json:"issuer"`
	JWKSURI           string   `json:"jwks_uri"`
	TokenEndpoint     string   `json:"token_endpoint"`
	GrantTypes        []string `json:"grant_types_supported"`
	TokenEndpointAuth []string `json:"token_endpoint_auth_methods_supported"`
	ResponseTypes     []string `json:"response_types_supported"`
}

// publicBase is the base URL of the public listener: configured, else from
// the minter's jwks_url, else from the request.
func publicBase(m *Minter, configured string, r *http.Request) string {
	if configured != "" {
		return strings.TrimSuffix(configured, "/")
	}
	if u := m.cat.Minter.JWKSURL; strings.HasSuffix(u, JWKSPath) {
		return strings.TrimSuffix(u, JWKSPath)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
