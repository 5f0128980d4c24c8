package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/hcl/v2"
)

func containsAlg(list []jose.SignatureAlgorithm, a jose.SignatureAlgorithm) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func (l *loader) buildTLS(raws []*rawTLS, f *decodedFile, d *diagnostics) *TLS {
	if len(raws) == 0 {
		return nil
	}
	for _, extra := range raws[1:] {
		d.errorf(extra.DefRange, "Duplicate tls block", "A listener has at most one tls block; the first one is at %s.", pos(raws[0].DefRange))
	}
	r := raws[0]
	t := &TLS{CertFile: resolvePath(f.dir, r.CertFile), KeyFile: resolvePath(f.dir, r.KeyFile)}
	if r.ClientCAFile != nil {
		t.ClientCAFile = resolvePath(f.dir, *r.ClientCAFile)
	}
	if (r.CertFile == "" && present(r.CertRange)) || (r.KeyFile == "" && present(r.KeyRange)) {
		d.errorf(r.DefRange, "Incomplete tls block", "A tls block needs both cert_file and key_file, non-empty.")
	}
	return t
}

func (l *loader) buildSidecar(rs *rawSidecar, f *decodedFile, ctx *hcl.EvalContext, cat *Catalog, d *diagnostics) *Sidecar {
	s := &Sidecar{
		API:             rs.API,
		Listen:          rs.Listen,
		Upstream:        rs.Upstream,
		Leeway:          duration(rs.Leeway, rs.LeewayRange, "leeway", DefaultLeeway, -1, 5*time.Minute, d),
		MaxTokenBytes:   DefaultMaxTokenBytes,
		CacheEntries:    DefaultCacheEntries,
		UpstreamTimeout: duration(rs.UpstreamTimeout, rs.UpTimeRange, "upstream_timeout", DefaultUpstreamTimeout, 0, time.Hour, d),
		ShutdownTimeout: duration(rs.ShutdownTimeout, rs.ShutRange, "shutdown_timeout", DefaultShutdownTimeout, 0, 10*time.Minute, d),
		TLS:             l.buildTLS(rs.TLS, f, d),
		AccessLog:       rs.AccessLog == nil || *rs.AccessLog,
		MinRemaining:    duration(rs.MinRemaining, rs.MinRemRange, "min_remaining", 0, -1, time.Hour, d),
		Limits:          sidecarLimits(rs, d),
	}
	api := cat.API(rs.API)
	if api == nil && present(rs.APIRange) {
		names := make([]string, 0, len(cat.apiByName))
		for _, a := range cat.APIs {
			names = append(names, a.Name)
		}
		d.errorf(rs.APIRange, "Unknown API", "The sidecar fronts %q, which no api block declares. Declared: %s.", rs.API, strings.Join(names, ", "))
	}
	if present(rs.ListenRange) {
		checkListen(rs.Listen, rs.ListenRange, "listen", d)
	}
	if present(rs.UpstreamRange) {
		checkURL(rs.Upstream, rs.UpstreamRange, "upstream", d)
	}
	s.UpstreamHost = UpstreamHostClient
	if rs.UpstreamHost != nil {
		if *rs.UpstreamHost != UpstreamHostClient && *rs.UpstreamHost != UpstreamHostUpstream {
			d.errorf(rs.UpHostRange, "Invalid upstream_host", "upstream_host is %q; use \"client\" (forward the client's Host, the default) or \"upstream\" (the upstream URL's host).", *rs.UpstreamHost)
		}
		s.UpstreamHost = *rs.UpstreamHost
	}
	buildSidecarListeners(rs, s, d)
	s.AdminListen = DefaultSidecarAdminListen
	if rs.AdminListen != nil {
		s.AdminListen = ""
		if *rs.AdminListen != "" && checkListen(*rs.AdminListen, rs.AdminRange, "admin_listen", d) {
			s.AdminListen = *rs.AdminListen
			warnPublicAdmin(s.AdminListen, rs.AdminRange, "sidecar's", d)
		}
	}
	if rs.MaxTokenBytes != nil {
		if *rs.MaxTokenBytes < 256 || *rs.MaxTokenBytes > 1<<20 {
			d.errorf(rs.MaxTokRange, "Size out of range", "max_token_bytes is %d; it must be between 256 and %d.", *rs.MaxTokenBytes, 1<<20)
		} else {
			s.MaxTokenBytes = *rs.MaxTokenBytes
		}
	}
	if rs.CacheEntries != nil {
		if *rs.CacheEntries < 0 || *rs.CacheEntries > 10_000_000 {
			d.errorf(rs.CacheRange, "Size out of range", "cache_entries is %d; it must be between 0 (no cache) and 10000000.", *rs.CacheEntries)
		} else {
			s.CacheEntries = *rs.CacheEntries
		}
	}
	for _, p := range rs.PublicPaths {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#") {
			d.errorf(rs.PublicRange, "Invalid public path", "The public path %q must start with / and hold no query or fragment; it is matched exactly.", p)
			continue
		}
		s.PublicPaths = append(s.PublicPaths, p)
	}
	for _, h := range rs.StripHeaders {
		switch {
		case !validHeaderName(h):
			d.errorf(rs.StripRange, "Invalid header name", "strip_headers holds %q, which is not an HTTP header name.", h)
		case strings.EqualFold(h, "Authorization"), strings.EqualFold(h, "X-Request-Id"):
			d.errorf(rs.StripRange, "Header set by the sidecar", "strip_headers may not name %s: the sidecar sets it for the upstream.", h)
		default:
			s.StripHeaders = append(s.StripHeaders, http.CanonicalHeaderKey(h))
		}
	}
	for _, rr := range rs.Routes {
		r := Route{PathPrefix: rr.PathPrefix}
		if !strings.HasPrefix(rr.PathPrefix, "/") && present(rr.PrefixRange) {
			d.errorf(rr.PrefixRange, "Invalid path prefix", "The route path_prefix %q must start with /.", rr.PathPrefix)
		}
		for _, m := range rr.Methods {
			if !validHeaderName(m) || strings.ToUpper(m) != m {
				d.errorf(rr.MethodRange, "Invalid method", "The route method %q must be an upper-case HTTP method such as \"POST\".", m)
				continue
			}
			r.Methods = append(r.Methods, m)
		}
		scopes, rngs := strList(rr.Scopes, ctx, d)
		if len(scopes) == 0 && present(rr.ScopesRange) {
			d.errorf(rr.ScopesRange, "Empty route scopes", "A route needs at least one scope; the inner token must hold one of them.")
		}
		for i, sc := range scopes {
			if api != nil && len(api.Scopes) > 0 && !api.HasScope(sc) {
				d.errorf(rngs[i], "Route scope outside the API", "The route needs %q, but the API %q never receives it (its scopes: %s), so the route could never be reached.", sc, api.Name, strings.Join(api.Scopes, " "))
				continue
			}
			r.Scopes = append(r.Scopes, sc)
		}
		s.Routes = append(s.Routes, r)
	}
	return s
}

func (l *loader) buildTrust(rt *rawTrust, f *decodedFile, ctx *hcl.EvalContext, cat *Catalog, d *diagnostics) *Trust {
	t := &Trust{
		Name:           rt.Name,
		Issuer:         rt.Issuer,
		Typ:            []string{"at+jwt"},
		Audience:       rt.Audience,
		TokenLifetime:  duration(rt.TokenLifetime, rt.LifetimeRange, "token_lifetime", 0, 0, 30*24*time.Hour, d),
		JWKSRefresh:    duration(rt.JWKSRefresh, rt.RefreshRange, "jwks_refresh", DefaultJWKSRefresh, time.Minute, 24*time.Hour, d),
		JWKSMinRefetch: duration(rt.JWKSMinRefetch, rt.RefetchRange, "jwks_min_refetch", DefaultJWKSMinRefetch, time.Second, time.Hour, d),
	}
	if !validName(rt.Name) {
		d.errorf(rt.LabelRange, "Invalid trust name", "The trust name %q must start with a letter or digit and hold only letters, digits, '-', '_' and '.'.", rt.Name)
	}
	if rt.Issuer == "" && present(rt.IssuerRange) {
		d.errorf(rt.IssuerRange, "Empty issuer", "The trust %q needs a non-empty issuer: the exact iss of its tokens.", rt.Name)
	} else if cat.Minter != nil && rt.Issuer == cat.Minter.Issuer {
		d.errorf(rt.IssuerRange, "Trust issuer is the minter", "The trust %q names the minter's own issuer; minter tokens are accepted through the call graph, not as a trust.", rt.Name)
	}
	sources := 0
	if rt.JWKSURL != nil {
		sources++
		if checkURL(*rt.JWKSURL, rt.URLRange, "jwks_url", d) {
			t.JWKSURL = *rt.JWKSURL
		}
	}
	if rt.JWKSFile != nil {
		sources++
		t.JWKSFile = resolvePath(f.dir, *rt.JWKSFile)
		cat.KeyFiles = append(cat.KeyFiles, t.JWKSFile)
		l.checkOptionalFile(t.JWKSFile, rt.DefRange, "jwks_file of the trust "+rt.Name, d)
	}
	if rt.IntrospectionURL != nil {
		sources++
		if checkURL(*rt.IntrospectionURL, rt.IntroRange, "introspection_url", d) {
			t.IntrospectionURL = *rt.IntrospectionURL
		}
	}
	if sources != 1 {
		d.errorf(rt.DefRange, "Trust needs one key source",
			"The trust %q declares %d of jwks_url, jwks_file and introspection_url; it needs exactly one: JWKS for JWT access tokens, introspection for opaque ones.", rt.Name, sources)
	}
	if rt.CAFile != nil {
		t.CAFile = resolvePath(f.dir, *rt.CAFile)
		cat.KeyFiles = append(cat.KeyFiles, t.CAFile)
	}
	algs, rngs := strList(rt.Algorithms, ctx, d)
	for i, a := range algs {
		if alg, ok := parseAlg(a, rngs[i], nil, d); ok {
			t.Algorithms = append(t.Algorithms, alg)
		}
	}
	introspection := rt.IntrospectionURL != nil
	if !introspection && len(algs) == 0 && sources == 1 {
		d.errorf(rt.DefRange, "Missing algorithms", "The trust %q needs algorithms, such as [\"RS256\"]: there is no default, so that a token's header never chooses.", rt.Name)
	}
	if rt.Typ != nil {
		t.Typ = nil
		for _, ty := range rt.Typ {
			t.Typ = append(t.Typ, NormalizeTyp(ty))
		}
	}
	if segs, set := claimPath(rt.Claim, ctx, d); set {
		t.Claim = segs
	} else if cat.Minter != nil {
		t.Claim = []string{cat.Minter.Claim}
	}
	if introspection {
		t.IntrospectionCache = duration(rt.IntrospectionCache, rt.ICacheRange, "introspection_cache", DefaultIntrospection, time.Second, time.Hour, d)
		if rt.IntrospectionClientID != nil {
			t.IntrospectionClientID = *rt.IntrospectionClientID
		}
		t.IntrospectionSecret, _ = l.secret(rt.IntrospectionSecret, ctx, "introspection_secret", BlocksTrust, d)
		if rt.TokenPrefix != nil {
			t.TokenPrefix = *rt.TokenPrefix
		}
	} else {
		for name, set := range map[string]bool{
			"introspection_client_id": rt.IntrospectionClientID != nil,
			"introspection_secret":    !isNull(rt.IntrospectionSecret),
			"introspection_cache":     rt.IntrospectionCache != nil,
			"token_prefix":            rt.TokenPrefix != nil,
		} {
			if set {
				d.errorf(rt.DefRange, "Introspection setting on a JWKS trust", "The trust %q sets %s, which applies only with introspection_url.", rt.Name, name)
			}
		}
	}
	return t
}

// NormalizeTyp lower-cases a typ value and drops an "application/" prefix
// (RFC 7515 4.1.9), so that "JWT" and "application/jwt" compare equal.
func NormalizeTyp(s string) string {
	s = strings.ToLower(s)
	return strings.TrimPrefix(s, "application/")
}

// checkOptionalFile warns (check) when a file that only the running
// process needs is absent; a sidecar reports it at start.
func (l *loader) checkOptionalFile(p string, rng hcl.Range, what string, d *diagnostics) {
	if l.opts.keys() != KeysCheck {
		return
	}
	if _, err := fs.Stat(l.fsys, p); err != nil && errors.Is(err, fs.ErrNotExist) {
		d.warnf(rng, "File absent", "The %s, %s, does not exist here; the process that uses it will not start without it.", what, p)
	}
}

func (l *loader) buildHook(rh *rawHook, f *decodedFile, ctx *hcl.EvalContext, d *diagnostics) *Hook {
	h := &Hook{
		Listen:         rh.Listen,
		APIKeyHeader:   DefaultAPIKeyHeader,
		Generic:        rh.Generic != nil && *rh.Generic,
		Okta:           rh.Okta != nil && *rh.Okta,
		Timeout:        duration(rh.Timeout, rh.TimeoutRange, "timeout", DefaultHookTimeout, 0, 10*time.Second, d),
		TLS:            l.buildTLS(rh.TLS, f, d),
		MaxConnections: count(rh.MaxConns, rh.MaxConnRange, "max_connections", DefaultMaxConnections, 1, MaxMaxConnections, d),
	}
	if present(rh.ListenRange) {
		checkListen(rh.Listen, rh.ListenRange, "listen", d)
	}
	if rh.PublicListen != nil && checkListen(*rh.PublicListen, rh.PublicRange, "public_listen", d) {
		h.PublicListen = *rh.PublicListen
	}
	h.AdminListen = DefaultHookAdminListen
	if rh.AdminListen != nil && checkListen(*rh.AdminListen, rh.AdminRange, "admin_listen", d) {
		h.AdminListen = *rh.AdminListen
		warnPublicAdmin(h.AdminListen, rh.AdminRange, "hook's", d)
	}
	if rh.APIKeyHeader != nil {
		if !validHeaderName(*rh.APIKeyHeader) || strings.EqualFold(*rh.APIKeyHeader, "Authorization") {
			d.errorf(rh.HeaderRange, "Invalid header name", "api_key_header %q must be an HTTP header name other than Authorization.", *rh.APIKeyHeader)
		} else {
			h.APIKeyHeader = http.CanonicalHeaderKey(*rh.APIKeyHeader)
		}
	}
	h.APIKey, _ = l.secret(rh.APIKey, ctx, "api_key", BlocksHook, d)
	at := rh.DefRange
	if rh.APIKey != nil && rh.APIKey.Range().Filename != "" {
		at = rh.APIKey.Range()
	}
	h.APIKeyAt = fmt.Sprintf("%s:%d:%d", at.Filename, at.Start.Line, at.Start.Column)
	l.checkAPIKeyLength(h.APIKey, rh.APIKey, d)
	return h
}

func (l *loader) secretOrFile(expr hcl.Expression, file *string, f *decodedFile, ctx *hcl.EvalContext, def hcl.Range, who string, group Blocks, d *diagnostics) Secret {
	s, set := l.secret(expr, ctx, "secret", group, d)
	switch {
	case set && file != nil:
		d.errorf(def, "Conflicting secrets", "%s sets both secret and secret_file; keep one.", who)
	case file != nil:
		p := resolvePath(f.dir, *file)
		b, err := readLimited(l.fsys, p)
		if err != nil && l.lazy(group) {
			d.warnf(def, "Secret not resolved", "%s names secret_file %s, which could not be read: %s. %s", who, p, errText(err), lazyNote("secret_file", group))
			return Secret{}
		}
		if err != nil {
			d.errorf(def, "Unreadable secret file", "%s names secret_file %s, which could not be read: %s.", who, p, errText(err))
			return Secret{}
		}
		return NewSecret(strings.TrimRight(string(b), "\r\n"))
	case !set:
		d.errorf(def, "Missing secret", "%s needs secret (through env(\"NAME\") or file(\"path\")) or secret_file.", who)
	}
	return s
}

func (l *loader) buildExchangeClient(rc *rawExchangeClient, f *decodedFile, ctx *hcl.EvalContext, cat *Catalog, d *diagnostics) *ExchangeClient {
	c := &ExchangeClient{Name: rc.Name}
	if rc.Name == "" || strings.ContainsAny(rc.Name, ":") {
		d.errorf(rc.LabelRange, "Invalid client name", "The exchange_client name %q must be non-empty and hold no ':' (it is an HTTP Basic user name).", rc.Name)
	}
	c.Secret = l.secretOrFile(rc.Secret, rc.SecretFile, f, ctx, rc.DefRange, "The exchange_client "+rc.Name, BlocksHook, d)
	auds, rngs := strList(rc.Audiences, ctx, d)
	if len(auds) == 0 && present(rc.AudienceRange) {
		d.errorf(rc.AudienceRange, "Empty audiences", "The exchange_client %q needs at least one audience it may obtain tokens for.", rc.Name)
	}
	for i, a := range auds {
		api := cat.APIByAudience(a)
		switch {
		case api == nil:
			d.errorf(rngs[i], "Unknown audience", "The exchange_client %q may obtain %q, which is no API's audience.", rc.Name, a)
		case !api.Exposed:
			d.errorf(rngs[i], "Audience of a non-exposed API", "The exchange_client %q may obtain %q, the audience of %q, which is not exposed: non-exposed APIs are reached only through their callers.", rc.Name, a, api.Name)
		default:
			c.Audiences = append(c.Audiences, a)
		}
	}
	return c
}

func (l *loader) buildExchange(re *rawExchange, f *decodedFile, ctx *hcl.EvalContext, d *diagnostics) *Exchange {
	e := &Exchange{TokenURL: re.TokenURL, ClientID: re.ClientID}
	if present(re.TokenURLRange) {
		checkURL(re.TokenURL, re.TokenURLRange, "token_url", d)
	}
	if re.ClientID == "" && present(re.ClientIDRange) {
		d.errorf(re.ClientIDRange, "Empty client_id", "The exchange block needs the client_id of an exchange_client.")
	}
	e.Secret = l.secretOrFile(re.Secret, re.SecretFile, f, ctx, re.DefRange, "The exchange block", BlocksSidecar, d)
	if re.CAFile != nil {
		e.CAFile = resolvePath(f.dir, *re.CAFile)
	}
	return e
}

// checkDuplicateIssuers refuses two JWKS trusts (or two introspection
// trusts) for one issuer: a token must map to one key source.
func checkDuplicateIssuers(files []*decodedFile, cat *Catalog, d *diagnostics) {
	type key struct {
		iss   string
		intro bool
	}
	first := map[key]string{}
	for _, t := range cat.Trusts {
		k := key{t.Issuer, t.Introspection()}
		if other, dup := first[k]; dup {
			for _, f := range files {
				for _, rt := range f.raw.Trusts {
					if rt.Name == t.Name {
						d.errorf(rt.IssuerRange, "Duplicate trust issuer", "The trusts %q and %q both verify %q the same way; merge them into one.", other, t.Name, t.Issuer)
					}
				}
			}
			continue
		}
		first[k] = t.Name
	}
}
