package unwrap

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
)

// typAccessToken is the typ of inner tokens (RFC 9068), normalized.
const typAccessToken = "at+jwt"

// errOuterOnly is Verify's cause on a verifier built with Options.OuterOnly.
var errOuterOnly = errors.New("verifier built for outer tokens only")

// Result is a verified request token: the inner token to forward and what
// was learned verifying it. A Result is immutable and may be shared (the
// cache hands the same one to many requests).
type Result struct {
	// Inner is the inner token for this API: what is forwarded upstream.
	Inner string
	// Outer are the outer token's registered claims; for a minter token
	// presented directly, the same claims as InnerClaims. Its Embedded and
	// Extra are nil: a Result holds what the request path needs, since the
	// verified-token cache keeps it (VerifyOuter returns both).
	Outer *Claims
	// InnerClaims are the inner token's claims.
	InnerClaims *Claims
	// Source is the trust name the outer token came from, "minter" for a
	// calling API's token, or "direct" for this API's own minter token.
	Source string
	// Expiry is the earliest exp involved (and, for an introspected outer
	// token, the end of its introspection's cache life): the result is not
	// valid after it.
	Expiry time.Time
	// Exchanged is true when Inner was obtained by token exchange.
	Exchanged bool

	// authz is "Bearer " + Inner, the Authorization header forwarded
	// upstream; Inner is its tail, so both cost one string.
	authz string
}

// Sources of a Result besides trust names.
const (
	SourceMinter        = "minter"
	SourceDirect        = "direct"
	SourceIntrospection = "introspection"
)

// Introspector verifies opaque (non-JWT) outer tokens, for introspection
// trusts (phantom tokens). Introspect returns the outer token's claims with
// Embedded read at the trust's claim path and Until set to the end of the
// answer's cache life; ok is false when the token is not one it handles. A
// dependency failure must be returned as an error that matches
// ErrUnavailable, an inactive token as one that matches ErrInvalidToken (a
// *Failure is passed through as it is). NewIntrospector builds the RFC 7662
// client.
type Introspector interface {
	Introspect(ctx context.Context, token string) (claims *Claims, ok bool, err error)
}

// Exchanger obtains an inner token by RFC 8693 token exchange when the
// outer token holds none for this API (but covers it) or holds an expired
// one. The token it returns is verified like an embedded one. An error that
// matches ErrInvalidToken means the subject token was refused (the client
// is told to renew), ErrInsufficientScope that the audience or scope was
// refused (403); any other error is a dependency failure (503). The
// Verifier shares one exchange among concurrent requests with the same
// token and caches its result; Exchange must bound its own duration.
// NewExchanger builds the RFC 8693 client.
type Exchanger interface {
	Exchange(ctx context.Context, subjectToken, audience string) (string, error)
}

// Verifier verifies request tokens for one API. It is safe for concurrent
// use; its key sets must be started (Start) to stay fresh.
type Verifier struct {
	api           *catalog.API
	minterIssuer  string
	minterClaim   []string
	minterAlgs    []jose.SignatureAlgorithm
	leeway        time.Duration
	minRemaining  time.Duration  // sidecar.min_remaining (lifetime.go)
	mapWarn       rateLimited    // detail.go
	xhealth       exchangeHealth // misconfig.go
	maxTokenBytes int
	now           func() time.Time
	minter        *keySet
	trusts        []*trustVerifier
	callers       map[string]bool // audiences of the APIs that call this one
	innerAud      []string        // the audience of inner tokens, shared by results
	introspector  Introspector
	exchanger     Exchanger
	exchanges     flightGroup[exchangeKey, *Result]
	exchangeFails *boundedCache[*Failure] // failed exchanges, for failureTTL
	cache         *tokenCache
	metrics       *metrics
	log           *zap.Logger

	lifecycle
}

type trustVerifier struct {
	t     *catalog.Trust
	keys  *keySet
	typ   []string
	claim []string
}

// newVerifier builds the verifier of api from the catalog. With outerOnly
// it has no minter key set (v.minter is nil): only VerifyOuter works. It
// starts nothing.
func newVerifier(cat *catalog.Catalog, api *catalog.API, opts *Options, outerOnly bool, m *metrics, log *zap.Logger) (*Verifier, error) {
	if cat.Minter == nil {
		return nil, errors.New("catalog has no minter")
	}
	v := &Verifier{
		api:           api,
		minterIssuer:  cat.Minter.Issuer,
		minterClaim:   []string{cat.Minter.Claim},
		minterAlgs:    cat.Minter.Algorithms,
		leeway:        catalog.DefaultLeeway,
		maxTokenBytes: catalog.DefaultMaxTokenBytes,
		now:           opts.now(),
		callers:       map[string]bool{},
		introspector:  opts.Introspector,
		exchanger:     opts.Exchanger,
		mapWarn:       rateLimited{interval: logEvery},
		xhealth:       exchangeHealth{logged: rateLimited{interval: logEvery}},
		metrics:       m,
		log:           log,
	}
	if v.minterClaim[0] == "" {
		v.minterClaim[0] = catalog.DefaultClaim
	}
	if sc := cat.Sidecar; sc != nil {
		v.leeway = max(sc.Leeway, 0) // the catalog applies the default
		v.minRemaining = max(sc.MinRemaining, 0)
		if sc.MaxTokenBytes > 0 {
			v.maxTokenBytes = sc.MaxTokenBytes
		}
		v.cache = newTokenCache(sc.CacheEntries) // zero: no cache
	} else {
		v.cache = newTokenCache(catalog.DefaultCacheEntries)
	}
	if api != nil {
		v.innerAud = []string{api.Audience}
		for _, c := range cat.Callers(api.Name) {
			v.callers[c.Audience] = true
		}
	}
	if v.exchanger != nil {
		v.exchangeFails = newBoundedCache[*Failure](catalog.DefaultCacheEntries)
	}
	flush := func() {
		v.cache.flush()
		v.exchangeFails.flush()
		m.flushed()
	}
	mk := func(name, url, file, caFile string, refresh, minRefetch time.Duration) (*keySet, error) {
		if opts.KeySources != nil {
			v.sources = opts.KeySources
			return v.sources.acquire(newSourceKey(name, url, file, caFile, refresh, minRefetch), v, flush, func() (*keySet, error) {
				return v.newKeySet(name, url, file, caFile, refresh, minRefetch, opts, flush)
			})
		}
		return v.newKeySet(name, url, file, caFile, refresh, minRefetch, opts, flush)
	}
	if err := v.buildKeySets(cat, outerOnly, mk); err != nil {
		if v.sources != nil {
			v.sources.release(v)
		}
		return nil, err
	}
	return v, nil
}

// newKeySet builds the key set of one source; it is shared with the
// Verifiers of later configurations when opts.KeySources is set.
func (v *Verifier) newKeySet(name, url, file, caFile string, refresh, minRefetch time.Duration, opts *Options, flush func()) (*keySet, error) {
	client, err := httpClientFor(caFile, opts.jwksTransport())
	if err != nil {
		return nil, fmt.Errorf("key set of %s: %w", name, err)
	}
	if refresh <= 0 {
		refresh = catalog.DefaultJWKSRefresh
	}
	if minRefetch <= 0 {
		minRefetch = catalog.DefaultJWKSMinRefetch
	}
	return &keySet{name: name, url: url, file: file, client: client, refresh: refresh, minRefetch: minRefetch,
		now: v.now, log: v.log, metrics: v.metrics, onChange: flush}, nil
}

// buildKeySets builds the minter's key set (unless outerOnly) and the
// trusts' verifiers with mk.
func (v *Verifier) buildKeySets(cat *catalog.Catalog, outerOnly bool, mk func(name, url, file, caFile string, refresh, minRefetch time.Duration) (*keySet, error)) error {
	var err error
	if mi := cat.Minter; !outerOnly {
		if v.minter, err = mk(SourceMinter, mi.JWKSURL, mi.JWKSFile, mi.CAFile, 0, 0); err != nil {
			return err
		}
	}
	for _, t := range cat.Trusts {
		if t.Introspection() {
			// Opaque tokens of introspection trusts reach opts.Introspector;
			// such a trust has no key set to load.
			continue
		}
		tv := &trustVerifier{t: t, typ: t.Typ, claim: t.Claim}
		if len(tv.typ) == 0 {
			tv.typ = []string{typAccessToken}
		}
		if len(tv.claim) == 0 {
			tv.claim = v.minterClaim
		}
		if tv.keys, err = mk(t.Name, t.JWKSURL, t.JWKSFile, t.CAFile, t.JWKSRefresh, t.JWKSMinRefetch); err != nil {
			return err
		}
		v.trusts = append(v.trusts, tv)
	}
	return nil
}

// keySets returns every key set: the minter's first (none for an
// outer-only verifier).
func (v *Verifier) keySets() []*keySet {
	out := make([]*keySet, 0, 1+len(v.trusts))
	if v.minter != nil {
		out = append(out, v.minter)
	}
	for _, t := range v.trusts {
		out = append(out, t.keys)
	}
	return out
}

// tokenKey is the cache key of a token: its full SHA-256.
func tokenKey(token string) cacheKey {
	return sha256.Sum256(bytesOf(token))
}

// Verify verifies a request's bearer token for this API and returns the
// inner token to forward. Errors are *Failure values matching the package's
// sentinels (ErrInvalidToken, ErrInsufficientScope, ErrUnavailable). A
// cached result costs no cryptography.
func (v *Verifier) Verify(ctx context.Context, token string) (*Result, error) {
	r, _, err := v.verifyCached(ctx, token)
	return r, err
}

// verifyCached is Verify that also reports a cache hit.
func (v *Verifier) verifyCached(ctx context.Context, token string) (*Result, bool, error) {
	var key cacheKey
	if r, ok := v.cached(token, &key); ok {
		return r, true, nil
	}
	r, err := v.verifyUncached(ctx, token, &key)
	return r, false, err
}

// cached returns the cached result for token, and counts the hit (a miss
// is counted by verifyUncached). It sets *key to the token's cache key when
// it computed it.
func (v *Verifier) cached(token string, key *cacheKey) (*Result, bool) {
	if len(token) > v.maxTokenBytes || v.cache == nil {
		return nil, false
	}
	*key = tokenKey(token)
	r, ok := v.cache.get(key, v.now())
	if ok {
		v.metrics.cache(true)
	}
	return r, ok
}

// cacheGenKey is the context key of the cacheGens that verifyUncached read
// before verifying: an exchange it leads to caches its result with them.
type cacheGenKey struct{}

type cacheGens struct{ results, failures uint64 }

// verifyUncached verifies token (a cache miss) and caches the result; key
// is the one cached set, if it did.
func (v *Verifier) verifyUncached(ctx context.Context, token string, key *cacheKey) (*Result, error) {
	if len(token) > v.maxTokenBytes {
		return nil, invalid(ReasonTooLarge, nil)
	}
	v.metrics.cache(false)
	// Before any key is read: a key change during verification flushes
	// the cache, and the result must then not be cached (putIf).
	gen := v.cache.generation()
	if v.exchanger != nil {
		ctx = context.WithValue(ctx, cacheGenKey{}, cacheGens{gen, v.exchangeFails.generation()})
	}
	now := v.now()
	start := time.Now()
	r, f := v.verify(ctx, token, now)
	v.metrics.verified(time.Since(start), f == nil)
	if f != nil {
		return nil, f
	}
	if now.Before(r.Expiry) && v.cache != nil {
		if *key == (cacheKey{}) {
			*key = tokenKey(token)
		}
		v.cache.putIf(key, r, r.Expiry, gen)
	}
	return r, nil
}

func (v *Verifier) verify(ctx context.Context, token string, now time.Time) (*Result, *Failure) {
	if v.api == nil {
		return nil, invalid(ReasonNotCaller, errors.New("verifier has no API"))
	}
	if v.minter == nil {
		return nil, invalid(ReasonNotCaller, errOuterOnly)
	}
	if v.introspector != nil && !looksLikeJWS(token) {
		return withSource(SourceIntrospection)(v.verifyOpaque(ctx, token, now))
	}
	p := new(parsed)
	p.pooledPayloads()
	defer p.release()
	if f := parseToken(token, p); f != nil {
		return nil, f
	}
	if p.claims.Issuer == v.minterIssuer {
		return withSource(SourceMinter)(v.verifyMinterOuter(ctx, token, p, now))
	}
	tv := v.trustFor(p.claims.Issuer)
	if tv == nil {
		return nil, invalid(ReasonUnknownIssuer, v.unknownIssuer(p.claims.Issuer))
	}
	return withSource(tv.t.Name)(v.verifyFromTrust(ctx, token, p, tv, now))
}

// VerifyOuter verifies token as an outer token from a trust issuer only
// (a minter token is refused): a JWT from a JWKS trust, or an opaque token
// through the Introspector. It returns its claims, Embedded and Extra
// included (and, for an opaque token, Until). It is what a token exchange
// endpoint needs for subject tokens (see Options.OuterOnly).
func (v *Verifier) VerifyOuter(ctx context.Context, token string) (*Claims, error) {
	if len(token) > v.maxTokenBytes {
		return nil, invalid(ReasonTooLarge, nil)
	}
	if v.introspector != nil && !looksLikeJWS(token) {
		c, f := v.introspect(ctx, token)
		if f != nil {
			return nil, f
		}
		return c, nil
	}
	p := new(parsed)
	if f := parseToken(token, p); f != nil {
		return nil, f
	}
	tv := v.trustFor(p.claims.Issuer)
	if tv == nil {
		return nil, invalid(ReasonUnknownIssuer, v.unknownIssuer(p.claims.Issuer))
	}
	if f := v.verifyTrust(ctx, p, tv, v.now()); f != nil {
		return nil, f
	}
	m, extra, err := extraClaims(p.members, tv.claim, nil)
	if err != nil {
		return nil, invalid(ReasonEmbeddedType, err)
	}
	c := p.claims
	c.Embedded, c.Extra = m, extra
	return &c, nil
}

func looksLikeJWS(token string) bool {
	return strings.Count(token, ".") == 2
}

func (v *Verifier) trustFor(iss string) *trustVerifier {
	for _, tv := range v.trusts {
		if tv.t.Issuer == iss {
			return tv
		}
	}
	return nil
}

// verifyOpaque hands an opaque token to the Introspector.
func (v *Verifier) verifyOpaque(ctx context.Context, token string, now time.Time) (*Result, *Failure) {
	c, f := v.introspect(ctx, token)
	if f != nil {
		return nil, f
	}
	if !v.api.Exposed {
		return nil, insufficient(ReasonNotExposed, descNotExposed, v.api.Scopes)
	}
	inner, found := c.Embedded[v.api.Name]
	return v.innerFrom(ctx, token, c, inner, found, SourceIntrospection, now)
}

// introspect asks the Introspector about an opaque token.
func (v *Verifier) introspect(ctx context.Context, token string) (*Claims, *Failure) {
	c, ok, err := v.introspector.Introspect(ctx, token)
	var f *Failure
	switch {
	case err != nil && errors.As(err, &f):
		return nil, f
	case err != nil && errors.Is(err, ErrUnavailable):
		return nil, unavailable(ReasonIntrospection, err)
	case err != nil:
		return nil, invalid(ReasonOpaque, err)
	case !ok || c == nil:
		// Not shaped like a JWS, and no trust's token_prefix.
		return nil, invalid(ReasonMalformed, errDots)
	}
	return c, nil
}
