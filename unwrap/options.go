package unwrap

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Options tune New. A nil *Options is the zero value.
type Options struct {
	// Logger receives the sidecar's logs, named "unwrap". If nil, nothing
	// is logged.
	Logger *zap.Logger
	// Registerer receives the sidecar's metrics. If nil, they are not
	// registered. A collector already registered (a sidecar rebuilt on
	// reload) is reused.
	Registerer prometheus.Registerer
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// API names the API to verify tokens for. If empty, the catalog's
	// sidecar.api.
	API string
	// JWKSTransport fetches key sets. If nil, each issuer gets a transport
	// with its ca_file roots.
	JWKSTransport http.RoundTripper
	// UpstreamTransport carries proxied requests. If nil, a Transport tuned
	// for one busy upstream (many idle connections, upstream_timeout as
	// the response header timeout).
	UpstreamTransport http.RoundTripper
	// Introspector verifies opaque outer tokens. If nil, a token that is not
	// a JWS is invalid.
	Introspector Introspector
	// Exchanger is the token exchange fallback. If nil, a missing or expired
	// inner token gets the 401 "renew" answers.
	Exchanger Exchanger
	// OuterOnly builds a Verifier (NewVerifier) that serves VerifyOuter
	// only, as a token exchange endpoint does: it loads no key set for the
	// minter's JWKS (Start neither fetches it nor waits for it in Ready),
	// and its Verify refuses every token. New ignores it: a sidecar always
	// verifies inner tokens.
	OuterOnly bool
	// KeySources, when set, shares key sets with the other Verifiers built
	// with it (a configuration being replaced on reload): see KeySources.
	// If nil, each Verifier builds and fetches its own.
	KeySources *KeySources
}

func (o *Options) logger() *zap.Logger {
	if o == nil || o.Logger == nil {
		return zap.NewNop()
	}
	return o.Logger
}

func (o *Options) registerer() prometheus.Registerer {
	if o == nil {
		return nil
	}
	return o.Registerer
}

func (o *Options) now() func() time.Time {
	if o == nil || o.Now == nil {
		return time.Now
	}
	return o.Now
}

func (o *Options) jwksTransport() http.RoundTripper {
	if o == nil {
		return nil
	}
	return o.JWKSTransport
}
