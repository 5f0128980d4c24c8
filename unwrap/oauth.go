package unwrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/internal/strictjson"
)

// This file holds the clients of the two OAuth endpoints a sidecar calls:
// RFC 7662 token introspection (phantom tokens) and RFC 8693 token exchange
// (the fallback for missing or expired inner tokens). Both POST a form with
// HTTP Basic client credentials and read a bounded JSON answer.

// Limits of the calls to OAuth endpoints.
const (
	// introspectTimeout bounds the wait for an introspection slot, and then
	// the call itself.
	introspectTimeout = 2 * time.Second
	// exchangeTimeout bounds an exchange; the endpoint may itself introspect
	// an opaque subject token, so it is longer than introspectTimeout.
	exchangeTimeout = 5 * time.Second
	// maxIntrospectBytes bounds an introspection answer: with opaque tokens
	// the embedded map has no header limit, but it has this one.
	maxIntrospectBytes = 256 << 10
	// maxExchangeBytes bounds a token exchange answer.
	maxExchangeBytes = 64 << 10
	// failureTTL is how long a failed introspection is cached (DESIGN.md:
	// "failures are cached 5 s"), inactive tokens included.
	failureTTL = 5 * time.Second
	// maxIntrospections bounds the introspection calls in flight.
	maxIntrospections = 64
	// maxExchanges bounds the token exchanges in flight: each distinct
	// outer token is exchanged once (a single flight), but a flood of
	// distinct tokens must not become as many calls and connections.
	maxExchanges = 64
	// endpointIdleConns is the idle connections kept per endpoint.
	endpointIdleConns = 64
)

// RFC 8693 identifiers.
const (
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// Errors of endpoint answers. They never hold answer or token text.
var (
	errAnswerTooLarge = errors.New("answer too large")
	errNotActive      = errors.New("answer has no boolean active member")
	errExchangeAnswer = errors.New("answer is not an RFC 8693 token response")
	errSaturated      = errors.New("no introspection slot free in time")
	errExchSaturated  = errors.New("no exchange slot free in time")
)

// statusError is an endpoint's unexpected HTTP status, with the RFC 6749
// error code of its body when it is one of the registered ones.
type statusError struct {
	Status int
	Code   string
}

func (e *statusError) Error() string {
	if e.Code == "" {
		return "endpoint answered " + strconv.Itoa(e.Status)
	}
	return "endpoint answered " + strconv.Itoa(e.Status) + " " + e.Code
}

// Is maps the token endpoint's refusals to the package's sentinels: the
// subject token refused (invalid_request, invalid_grant) is ErrInvalidToken,
// the audience or scope refused (invalid_target, invalid_scope) is
// ErrInsufficientScope; everything else (invalid_client, 5xx, ...) is
// ErrUnavailable, since the client's token may be fine.
func (e *statusError) Is(target error) bool {
	refusal := e.Status == http.StatusBadRequest
	switch target {
	case ErrInvalidToken:
		return refusal && (e.Code == "invalid_request" || e.Code == "invalid_grant")
	case ErrInsufficientScope:
		return refusal && (e.Code == "invalid_target" || e.Code == "invalid_scope")
	case ErrUnavailable:
		return !e.Is(ErrInvalidToken) && !e.Is(ErrInsufficientScope)
	}
	return false
}

// oauthCodes are the error codes (RFC 6749 5.2, RFC 8693 2.2.2) that an
// error may repeat; any other value of an answer is not kept.
var oauthCodes = []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
	"unsupported_grant_type", "invalid_scope", "invalid_target", "server_error", "temporarily_unavailable"}

// endpoint is one OAuth endpoint: its URL, the client credentials sent with
// HTTP Basic, and a client that never follows redirects (a 307 would resend
// the token elsewhere) nor uses a proxy from the environment.
type endpoint struct {
	url      string
	clientID string
	secret   catalog.Secret
	client   *http.Client
	maxBytes int64
}

func newEndpoint(rawURL, clientID string, secret catalog.Secret, caFile string, timeout time.Duration, maxBytes int64) (*endpoint, error) {
	c, err := newHTTPClient(caFile, nil, timeout, endpointIdleConns)
	if err != nil {
		return nil, err
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &endpoint{url: rawURL, clientID: clientID, secret: secret, client: c, maxBytes: maxBytes}, nil
}

// post sends form and returns the answer's status and body, read up to
// maxBytes. The client id and secret are form-urlencoded before Basic
// encoding (RFC 6749 2.3.1).
func (e *endpoint) post(ctx context.Context, form url.Values) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if e.clientID != "" {
		req.SetBasicAuth(url.QueryEscape(e.clientID), url.QueryEscape(e.secret.Reveal()))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, nil, err // a *url.Error: the URL (without password) and the cause
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, e.maxBytes+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read answer: %w", err)
	}
	if int64(len(body)) > e.maxBytes {
		return resp.StatusCode, nil, errAnswerTooLarge
	}
	return resp.StatusCode, body, nil
}

// NewIntrospector returns the RFC 7662 client for the catalog's
// introspection trusts, or nil (a nil interface) when it declares none. The
// client caches answers (successes until min(exp, introspection_cache),
// failures and inactive tokens for 5 s) in a cache of the sidecar's
// cache_entries (the default when zero), runs at most one introspection per token at a time and at
// most 64 in all, and gives up on an endpoint after 2 s. opts supplies the
// logger, registerer and clock. It is safe for concurrent use; build a new
// one on reload.
func NewIntrospector(cat *catalog.Catalog, opts *Options) (Introspector, error) {
	if cat == nil {
		return nil, errors.New("no catalog")
	}
	in := &introspection{
		sem:     make(chan struct{}, maxIntrospections),
		timeout: introspectTimeout,
		leeway:  catalog.DefaultLeeway,
		now:     opts.now(),
		log:     opts.logger().Named("unwrap").Named("introspection"),
	}
	entries := catalog.DefaultCacheEntries
	if sc := cat.Sidecar; sc != nil {
		in.leeway = max(sc.Leeway, 0)
		if sc.CacheEntries > 0 {
			// Zero turns off the verified-token cache, not this one:
			// failures are always cached, to spare a struggling endpoint.
			entries = sc.CacheEntries
		}
	}
	for _, t := range cat.Trusts {
		if !t.Introspection() {
			continue
		}
		ep, err := newEndpoint(t.IntrospectionURL, t.IntrospectionClientID, t.IntrospectionSecret, t.CAFile, introspectTimeout, maxIntrospectBytes)
		if err != nil {
			return nil, fmt.Errorf("introspection of %s: %w", t.Name, err)
		}
		it := &introspectionTrust{t: t, claim: t.Claim, ttl: t.IntrospectionCache, endpoint: ep}
		if len(it.claim) == 0 && cat.Minter != nil {
			it.claim = []string{cat.Minter.Claim}
		}
		if it.ttl <= 0 {
			it.ttl = catalog.DefaultIntrospection
		}
		in.trusts = append(in.trusts, it)
	}
	if len(in.trusts) == 0 {
		return nil, nil
	}
	// The longest token_prefix that matches wins; a trust without one
	// takes what no prefix claims (declaration order between equals).
	slices.SortStableFunc(in.trusts, func(a, b *introspectionTrust) int {
		return len(b.t.TokenPrefix) - len(a.t.TokenPrefix)
	})
	m, err := newMetrics(opts.registerer())
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	in.metrics = m
	in.cache = newBoundedCache[*introspected](entries)
	return in, nil
}

// introspection is the Introspector of the catalog's introspection trusts.
type introspection struct {
	trusts  []*introspectionTrust // longest token_prefix first
	cache   *boundedCache[*introspected]
	flight  flightGroup[cacheKey, *introspected]
	sem     chan struct{}
	timeout time.Duration
	leeway  time.Duration
	now     func() time.Time
	metrics *metrics
	log     *zap.Logger
}

type introspectionTrust struct {
	t        *catalog.Trust
	claim    []string
	ttl      time.Duration
	endpoint *endpoint
}

// introspected is the outcome of one introspection, cached and shared by
// every request that waited for it: claims, or the failure. Immutable.
type introspected struct {
	claims *Claims
	fail   *Failure
}

// result hands out a copy, so that a request may change its claims
// (innerFrom drops Embedded) or failure without touching the cached ones.
func (e *introspected) result() (*Claims, bool, error) {
	if e.fail != nil {
		f := *e.fail
		return nil, true, &f
	}
	c := *e.claims
	return &c, true, nil
}

func (in *introspection) trustFor(token string) *introspectionTrust {
	for _, it := range in.trusts {
		if strings.HasPrefix(token, it.t.TokenPrefix) {
			return it
		}
	}
	return nil
}

// Introspect verifies an opaque token at its trust's introspection
// endpoint. ok is false for a token shaped like a JWS or without any
// trust's token_prefix. Errors are *Failure values: ErrInvalidToken for an
// inactive or unacceptable token, ErrUnavailable when the endpoint failed.
func (in *introspection) Introspect(ctx context.Context, token string) (*Claims, bool, error) {
	if looksLikeJWS(token) {
		return nil, false, nil
	}
	it := in.trustFor(token)
	if it == nil {
		return nil, false, nil
	}
	key := tokenKey(token)
	if e, ok := in.cache.get(&key, in.now()); ok {
		in.metrics.introspected(introCached, 0)
		return e.result()
	}
	e, _, err := in.flight.do(ctx, key, func(ctx context.Context) (*introspected, error) {
		return in.introspect(ctx, it, token, &key), nil
	})
	if err != nil {
		// This request's context ended first (the call goes on for the
		// others), or the call panicked.
		return nil, true, unavailable(ReasonIntrospection, err)
	}
	return e.result()
}

// introspect is the one call in flight for a token: it asks the endpoint,
// caches the outcome and returns it.
func (in *introspection) introspect(ctx context.Context, it *introspectionTrust, token string, key *cacheKey) *introspected {
	// A call that finished between the caller's cache miss and this one's
	// start has cached its answer: use it rather than ask again.
	if e, ok := in.cache.get(key, in.now()); ok {
		in.metrics.introspected(introCached, 0)
		return e
	}
	start := time.Now()
	e, outcome := in.call(ctx, it, token)
	d := time.Since(start)
	in.metrics.introspected(outcome, d)
	now := in.now()
	until := now.Add(failureTTL)
	if e.claims != nil {
		until = earliest(e.claims.Until, e.claims.Expiry)
	}
	in.cache.put(key, e, until)
	lvl := zapcore.DebugLevel
	if outcome == introUnavailable {
		lvl = zapcore.WarnLevel
	}
	if ce := in.log.Check(lvl, "introspected"); ce != nil {
		fields := []zap.Field{zap.String(fieldIssuer, it.t.Name), zap.String(fieldOutcome, outcome),
			zap.String(fieldTokenFP, fingerprint(token)), zap.Duration(fieldDuration, d)}
		if e.fail != nil {
			fields = append(fields, zap.String(fieldReason, string(e.fail.Reason)))
			if e.fail.Err != nil {
				fields = append(fields, zap.Error(e.fail.Err))
			}
		}
		ce.Write(fields...)
	}
	return e
}

// call waits for a slot (at most the timeout), then asks the endpoint (at
// most the timeout again) and judges the answer.
func (in *introspection) call(ctx context.Context, it *introspectionTrust, token string) (*introspected, string) {
	down := func(err error) (*introspected, string) {
		return &introspected{fail: unavailable(ReasonIntrospection, err)}, introUnavailable
	}
	wait := time.NewTimer(in.timeout)
	select {
	case in.sem <- struct{}{}:
		wait.Stop()
		defer func() { <-in.sem }()
	case <-wait.C:
		return down(errSaturated)
	case <-ctx.Done():
		wait.Stop()
		return down(ctx.Err())
	}
	ctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	status, body, err := it.endpoint.post(ctx, url.Values{"token": {token}, "token_type_hint": {"access_token"}})
	if err != nil {
		return down(err)
	}
	if status != http.StatusOK {
		return down(&statusError{Status: status})
	}
	c, f := in.judge(body, it, in.now())
	switch {
	case f == nil:
		return &introspected{claims: c}, introActive
	case f.Status == http.StatusServiceUnavailable:
		return &introspected{fail: f}, introUnavailable
	case f.Reason == ReasonInactive:
		return &introspected{fail: f}, introInactive
	}
	return &introspected{fail: f}, introRefused
}

// judge reads an introspection answer. An answer that is not the RFC 7662
// grammar (one JSON object without duplicate members, a boolean active,
// registered members of their types) is garbage: 503, the token may be
// fine. A well-formed answer refuses the token (401) when it is inactive,
// from another issuer, not an access token (Hydra answers active for
// refresh tokens too), for another audience, expired, or without sub,
// client_id or exp. jti and scope are not required, unlike for a JWT outer
// token: Hydra's opaque tokens have no jti, and omit scope when none was
// granted; active and token_use already tell an access token from others,
// which is what the required claims do for JWTs (RFC 8725 3.12).
func (in *introspection) judge(body []byte, it *introspectionTrust, now time.Time) (*Claims, *Failure) {
	if err := strictjson.CheckObject(body); err != nil {
		return nil, unavailable(ReasonIntrospection, fmt.Errorf("introspection answer: %w", err))
	}
	c := &Claims{}
	ok, top := decodeClaims(body, c, nil)
	if !ok {
		return nil, unavailable(ReasonIntrospection, fmt.Errorf("introspection answer: %w", errClaimType))
	}
	// active must be a boolean, token_use a string (or null) when present.
	active, tokenUse := member(top, "active"), member(top, "token_use")
	if tokenUse != nil && tokenUse[0] != '"' && tokenUse[0] != 'n' ||
		active != nil && active[0] != 't' && active[0] != 'f' && active[0] != 'n' {
		return nil, unavailable(ReasonIntrospection, fmt.Errorf("introspection answer: %w", errClaimType))
	}
	if active == nil || active[0] == 'n' {
		return nil, unavailable(ReasonIntrospection, errNotActive)
	}
	if active[0] != 't' {
		return nil, invalid(ReasonInactive, nil)
	}
	if c.Issuer != it.t.Issuer {
		return nil, invalid(ReasonUnknownIssuer, nil)
	}
	if tokenUse != nil && tokenUse[0] == '"' && jsonString(tokenUse) != "access_token" {
		return nil, invalid(ReasonTokenUse, nil)
	}
	if f := checkTimes(c, now, in.leeway, false); f != nil {
		return nil, f
	}
	if c.Subject == "" || c.ClientID == "" {
		return nil, invalid(ReasonMissingClaim, errors.New("an introspected access token needs sub, client_id and exp"))
	}
	if aud := it.t.Audience; len(aud) > 0 && !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(aud, a) }) {
		return nil, invalid(ReasonAudience, nil)
	}
	m, extra, err := extraClaims(top, it.claim, introspectionMembers)
	if err != nil {
		return nil, invalid(ReasonEmbeddedType, err)
	}
	c.Embedded, c.Extra = m, extra
	c.Until = now.Add(it.ttl)
	return c, nil
}

// NewExchanger returns the RFC 8693 client of the catalog's exchange block,
// or nil (a nil interface) when it has none. Each exchange gives up after
// 5 s. It is safe for concurrent use. The Verifier shares one exchange among
// concurrent requests with the same token and caches its result.
func NewExchanger(cat *catalog.Catalog, opts *Options) (Exchanger, error) {
	if cat == nil || cat.Exchange == nil {
		return nil, nil
	}
	x := cat.Exchange
	ep, err := newEndpoint(x.TokenURL, x.ClientID, x.Secret, x.CAFile, exchangeTimeout, maxExchangeBytes)
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	return &exchangeClient{endpoint: ep, timeout: exchangeTimeout, sem: make(chan struct{}, maxExchanges)}, nil
}

// exchangeClient is the Exchanger of an exchange block. At most
// maxExchanges calls are in flight; the others wait for a slot within
// their timeout.
type exchangeClient struct {
	endpoint *endpoint
	timeout  time.Duration
	sem      chan struct{}
}

// exchangeAnswer is an RFC 8693 2.2.1 answer.
type exchangeAnswer struct {
	AccessToken     string  `json:"access_token"`
	IssuedTokenType string  `json:"issued_token_type"`
	TokenType       string  `json:"token_type"`
	ExpiresIn       *uint64 `json:"expires_in"`
	Scope           *string `json:"scope"`
}

// Exchange asks the token endpoint for an access token for audience in
// exchange for subjectToken (subject_token_type access_token, whether it is
// a JWT or opaque), authenticating with HTTP Basic. An error matches
// ErrInvalidToken when the endpoint refused the subject token,
// ErrInsufficientScope when it refused the audience or scope, and
// ErrUnavailable otherwise.
func (x *exchangeClient) Exchange(ctx context.Context, subjectToken, audience string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, x.timeout)
	defer cancel()
	select {
	case x.sem <- struct{}{}:
		defer func() { <-x.sem }()
	case <-ctx.Done():
		return "", fmt.Errorf("token exchange: %w: %w", errExchSaturated, ctx.Err())
	}
	status, body, err := x.endpoint.post(ctx, url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {tokenTypeAccessToken},
		"audience":           {audience},
	})
	if err != nil {
		return "", fmt.Errorf("token exchange: %w", err)
	}
	if status != http.StatusOK {
		se := &statusError{Status: status}
		var eb struct {
			Error string `json:"error"`
		}
		if strictjson.CheckFields(body, &eb) == nil && json.Unmarshal(body, &eb) == nil && slices.Contains(oauthCodes, eb.Error) {
			se.Code = eb.Error
		}
		return "", fmt.Errorf("token exchange: %w", se)
	}
	var a exchangeAnswer
	if err := strictjson.CheckFields(body, &a); err != nil {
		return "", fmt.Errorf("token exchange: %w: %w", errExchangeAnswer, err)
	}
	if err := json.Unmarshal(body, &a); err != nil || a.AccessToken == "" ||
		(a.IssuedTokenType != tokenTypeAccessToken && a.IssuedTokenType != tokenTypeJWT) ||
		!strings.EqualFold(a.TokenType, "Bearer") {
		return "", fmt.Errorf("token exchange: %w", errExchangeAnswer)
	}
	return a.AccessToken, nil
}

// exchangeKey identifies a shared exchange: the outer token and the
// audience asked for.
type exchangeKey struct {
	token    cacheKey
	audience string
}

// exchange obtains this API's inner token through the Exchanger, once for
// all concurrent requests with the same outer token; why is the reason the
// embedded token could not be used (ReasonPredatesAPI or
// ReasonInnerExpired). The caller caches a result like any other; a failure
// is cached here for failureTTL (5 s, the Retry-After of a 503), as for
// introspection, so that a failing endpoint is not asked again at once.
func (v *Verifier) exchange(ctx context.Context, outerToken string, outer *Claims, source string, why Reason) (*Result, *Failure) {
	key := exchangeKey{token: tokenKey(outerToken), audience: v.api.Audience}
	if f, ok := v.exchangeFails.get(&key.token, v.now()); ok {
		c := *f
		return nil, &c
	}
	if f := v.exchangeBlocked(); f != nil {
		return nil, f
	}
	r, _, err := v.exchanges.do(ctx, key, func(ctx context.Context) (*Result, error) {
		// An exchange that finished since this request missed the cache
		// has cached its result (the verified-token cache has the same
		// key): use it rather than exchange again.
		if r, ok := v.cache.get(&key.token, v.now()); ok {
			return r, nil
		}
		// The generations read before the outer token was verified (see
		// verifyUncached): a key change since then drops what it caches.
		gens, ok := ctx.Value(cacheGenKey{}).(cacheGens)
		if !ok {
			gens = cacheGens{v.cache.generation(), v.exchangeFails.generation()}
		}
		ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
		defer cancel()
		r, f := v.exchangeOnce(ctx, outerToken, outer, source, why)
		if f != nil {
			v.exchangeFails.putIf(&key.token, f, v.now().Add(failureTTL), gens.failures)
			return nil, f
		}
		if v.now().Before(r.Expiry) {
			v.cache.putIf(&key.token, r, r.Expiry, gens.results)
		}
		return r, nil
	})
	if err != nil {
		var f *Failure
		if errors.As(err, &f) {
			c := *f // shared by every request that waited: hand out copies
			return nil, &c
		}
		return nil, unavailable(ReasonExchangeFailed, err) // this request's context ended
	}
	return r, nil
}

// exchangeOnce is the one exchange in flight for an outer token. The issued
// token is verified like an embedded one (typ, iss, aud, sub and client_id
// equal to the outer token's). Refusals of the subject token keep the
// "renew" answer; a refused audience or scope is 403; an endpoint that
// fails, or issues a token that does not verify, is 503: the client's token
// may be fine.
func (v *Verifier) exchangeOnce(ctx context.Context, outerToken string, outer *Claims, source string, why Reason) (*Result, *Failure) {
	start := time.Now()
	tok, err := v.exchanger.Exchange(ctx, outerToken, v.api.Audience)
	d := time.Since(start)
	if err != nil {
		var f *Failure
		outcome := exchUnavailable
		switch {
		case clientRefused(err):
			v.metrics.exchanged(outcome, d)
			v.metrics.exchangeFailed(exchFailClient)
			return nil, v.exchangeRefusedClient(err)
		case errors.Is(err, ErrInvalidToken):
			desc := descPredates
			if why == ReasonInnerExpired {
				desc = descInnerExpired
			}
			f, outcome = renew(ReasonExchangeRefused, desc), exchRefused
		case errors.Is(err, ErrInsufficientScope):
			f, outcome = insufficient(ReasonExchangeTarget, descNoScope, v.api.Scopes), exchForbidden
		default:
			f = unavailable(ReasonExchangeFailed, nil)
			v.metrics.exchangeFailed(exchFailUnavailable)
		}
		f.Err, f.Inner = err, true
		v.metrics.exchanged(outcome, d)
		return nil, f
	}
	ic, f := v.checkInner(ctx, tok, outer, v.now())
	if f != nil {
		v.metrics.exchanged(exchInvalid, d)
		v.metrics.exchangeFailed(exchFailIssued)
		if f.Status != http.StatusServiceUnavailable {
			f = unavailable(ReasonExchangeInvalid, f)
		}
		f.Inner = true
		return nil, f
	}
	v.metrics.exchanged(exchOK, d)
	v.exchangeHealthy()
	if ce := v.log.Check(zapcore.DebugLevel, "exchanged"); ce != nil {
		ce.Write(zap.String(fieldIssuer, source), zap.String(fieldJTI, ic.ID), zap.String(fieldTokenFP, fingerprint(outerToken)),
			zap.Duration(fieldDuration, d))
	}
	r := v.result(tok, outer, &ic, source)
	r.Exchanged = true
	v.cacheUntil(r, v.chainExpiry(tok, 0)) // its nested tokens are fresh: served until they are not
	return r, nil
}
