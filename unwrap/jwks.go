package unwrap

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/internal/strictjson"
)

// Key set limits.
const (
	maxJWKSBytes    = 1 << 20 // a key set larger than this is garbage
	jwksTimeout     = 10 * time.Second
	minMaxAge       = time.Minute
	maxMaxAge       = time.Hour
	filePollEvery   = time.Second
	retryFirstEvery = time.Second
	retryMaxEvery   = 30 * time.Second
)

var (
	errUnknownKid      = errors.New("no key with this kid")
	errAmbiguousKey    = errors.New("token has no kid and the key set holds several usable keys")
	errKeyAlg          = errors.New("key does not fit the token's alg")
	errKeysUnavailable = errors.New("key set cannot be fetched")
	errNoKeys          = errors.New("key set holds no usable signing key")
)

// keyIndex is one loaded key set, immutable.
type keyIndex struct {
	keys   []jose.JSONWebKey
	digest [32]byte
}

// keySet fetches and caches one issuer's JWKS, from a URL or a file. It is
// safe for concurrent use.
type keySet struct {
	name       string // trust name or "minter", for logs and metrics
	url, file  string
	client     *http.Client
	refresh    time.Duration
	minRefetch time.Duration
	now        func() time.Time
	log        *zap.Logger
	metrics    *metrics
	onChange   func()

	cur     atomic.Pointer[keyIndex]
	loaded  atomic.Bool
	lastErr atomic.Pointer[string] // the last fetch's error, or nil (readiness.go)

	mu          sync.Mutex
	call        *fetchCall // the fetch in flight, shared by every caller
	lastAttempt time.Time
	lastOK      bool
	maxAge      time.Duration
	fileStamp   string
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// httpClientFor returns a client for fetching key sets: a fetch timeout,
// no proxy from the environment, and caFile's roots added when set.
func httpClientFor(caFile string, base http.RoundTripper) (*http.Client, error) {
	return newHTTPClient(caFile, base, jwksTimeout, 2)
}

// newHTTPClient returns a client with timeout, no proxy from the
// environment, up to idle idle connections per host, and caFile's roots
// added when set. A base transport is used as it is.
func newHTTPClient(caFile string, base http.RoundTripper, timeout time.Duration, idle int) (*http.Client, error) {
	if base != nil {
		return &http.Client{Transport: base, Timeout: timeout}, nil
	}
	tr := &http.Transport{
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificates in ca_file %s", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// Loaded reports whether the key set was loaded at least once.
func (k *keySet) Loaded() bool { return k.loaded.Load() }

// key appends to dst the keys that may verify a token with kid and alg:
// those find returns (a caller's small array spares an allocation). An unknown kid (or, without kid, no usable key) triggers one
// shared refetch, rate-limited by minRefetch. The error is errUnknownKid,
// errAmbiguousKey or errKeyAlg (the token is invalid) or errKeysUnavailable
// (503).
func (k *keySet) key(ctx context.Context, kid string, alg jose.SignatureAlgorithm, dst []*jose.JSONWebKey) ([]*jose.JSONWebKey, error) {
	keys, err := k.findAppend(dst, kid, alg)
	if !errors.Is(err, errUnknownKid) {
		return keys, err
	}
	if ferr := k.refetch(ctx, false); ferr != nil {
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, ferr)
	}
	return k.findAppend(dst, kid, alg)
}

// find looks kid up in the current keys: every key with this kid usable
// with alg (several when a key set reuses a kid: DESIGN.md wants a token
// verified against every key), or, for a token without kid, the one key
// usable with alg.
func (k *keySet) find(kid string, alg jose.SignatureAlgorithm) ([]*jose.JSONWebKey, error) {
	return k.findAppend(nil, kid, alg)
}

// findAppend is find appending to dst[:0].
func (k *keySet) findAppend(dst []*jose.JSONWebKey, kid string, alg jose.SignatureAlgorithm) ([]*jose.JSONWebKey, error) {
	idx := k.cur.Load()
	if idx == nil {
		return nil, errUnknownKid
	}
	found := dst[:0]
	withKid := 0
	for i := range idx.keys {
		jk := &idx.keys[i]
		if kid != "" {
			if jk.KeyID != kid {
				continue
			}
			withKid++
		}
		if !usable(jk, alg) {
			continue
		}
		found = append(found, jk)
	}
	switch {
	case len(found) > 1 && kid == "":
		return nil, errAmbiguousKey
	case len(found) > 0:
		return found, nil
	case kid != "" && withKid > 0:
		return nil, errKeyAlg
	}
	return nil, errUnknownKid
}

// usable reports whether jk can verify a token signed with alg: its own alg,
// where present, equals alg, and its key type fits alg.
func usable(jk *jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if jk.Algorithm != "" && jk.Algorithm != string(alg) {
		return false
	}
	switch jk.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(string(alg), "RS") || strings.HasPrefix(string(alg), "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(string(alg), "ES")
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// refetch fetches the key set once for every concurrent caller. Unless
// force is set, a fetch started less than minRefetch after the previous one
// is skipped: the result is then that of the previous fetch. A nil error
// means the latest fetch succeeded.
func (k *keySet) refetch(ctx context.Context, force bool) error {
	k.mu.Lock()
	if c := k.call; c != nil {
		k.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	now := k.now()
	if !force && !k.lastAttempt.IsZero() && now.Sub(k.lastAttempt) < k.minRefetch && now.Sub(k.lastAttempt) >= 0 {
		ok := k.lastOK
		k.mu.Unlock()
		if ok {
			return nil
		}
		return errKeysUnavailable
	}
	c := &fetchCall{done: make(chan struct{})}
	k.call = c
	k.lastAttempt = now
	k.mu.Unlock()

	// The fetch is shared: it must not die with the request that started it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksTimeout)
	c.err = k.fetch(fctx)
	cancel()

	k.mu.Lock()
	k.call = nil
	k.lastOK = c.err == nil
	k.mu.Unlock()
	close(c.done)
	return c.err
}

// fetch reads the key set from its source and installs it when usable; on
// any failure the previous keys stay.
func (k *keySet) fetch(ctx context.Context) error {
	var (
		body   []byte
		maxAge time.Duration
		err    error
	)
	if k.file != "" {
		body, err = k.readFile()
	} else {
		body, maxAge, err = k.get(ctx)
	}
	if err == nil {
		err = k.install(body)
	}
	k.metrics.jwksFetch(k.name, err)
	k.noteFetch(err)
	if err != nil {
		k.log.Warn("key set fetch failed; keeping the last good keys",
			zap.String(fieldIssuer, k.name), zap.Bool("have_keys", k.cur.Load() != nil), zap.Error(err))
		return err
	}
	k.mu.Lock()
	k.maxAge = maxAge
	k.mu.Unlock()
	k.loaded.Store(true)
	return nil
}

func (k *keySet) readFile() ([]byte, error) {
	f, err := os.Open(k.file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("key set over %d bytes", maxJWKSBytes)
	}
	return b, nil
}

func (k *keySet) get(ctx context.Context) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, 0, fmt.Errorf("key set answered HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, 0, err
	}
	if len(b) > maxJWKSBytes {
		return nil, 0, fmt.Errorf("key set over %d bytes", maxJWKSBytes)
	}
	return b, parseMaxAge(resp.Header.Get("Cache-Control")), nil
}

// parseMaxAge returns Cache-Control's max-age clamped to 1m..1h, or zero.
func parseMaxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(d), "=")
		if !ok || !strings.EqualFold(name, "max-age") {
			continue
		}
		n, err := strconv.Atoi(strings.Trim(val, `"`))
		if err != nil || n < 0 {
			return 0
		}
		age := time.Duration(n) * time.Second
		return min(max(age, minMaxAge), maxMaxAge)
	}
	return 0
}

// install parses a JWKS document and makes it current when it holds at least
// one usable public signing key. Keys it cannot use (encryption keys,
// symmetric keys, unknown types) are skipped one by one.
func (k *keySet) install(body []byte) error {
	keys, err := ParseJWKS(body)
	if err != nil {
		return err
	}
	idx := &keyIndex{keys: keys, digest: sha256.Sum256(body)}
	prev := k.cur.Swap(idx)
	if prev != nil && prev.digest == idx.digest {
		return nil
	}
	kids := make([]string, 0, len(keys))
	for _, jk := range keys {
		kids = append(kids, jk.KeyID)
	}
	k.log.Info("key set loaded", zap.String(fieldIssuer, k.name), zap.Strings(fieldKeys, kids), zap.Bool("changed", prev != nil))
	if prev != nil && k.onChange != nil {
		k.onChange()
	}
	return nil
}

// ParseJWKS parses a JSON Web Key Set and returns its public signing keys
// (private members are dropped; symmetric, encryption and unknown keys, and
// RSA keys under catalog.MinRSABits bits, are skipped). It is an error when none is left or the document is not a JWKS.
func ParseJWKS(body []byte) ([]jose.JSONWebKey, error) {
	if err := strictjson.CheckFields(body, (*jwksMembers)(nil)); err != nil {
		return nil, fmt.Errorf("key set is not valid JSON: %w", err)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errors.New("key set is not a JWKS document")
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var jk jose.JSONWebKey
		if err := jk.UnmarshalJSON(bytes.TrimSpace(raw)); err != nil {
			continue
		}
		if jk.Use != "" && jk.Use != "sig" {
			continue
		}
		if !jk.IsPublic() {
			jk = jk.Public()
		}
		if !jk.Valid() {
			continue
		}
		switch k := jk.Key.(type) {
		case *rsa.PublicKey:
			// RFC 7518 3.3 and 3.5: 2048 bits or more, as mint signs with.
			if k.N.BitLen() >= catalog.MinRSABits {
				keys = append(keys, jk)
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
			keys = append(keys, jk)
		}
	}
	if len(keys) == 0 {
		return nil, errNoKeys
	}
	return keys, nil
}

// run loads the key set and keeps it fresh until ctx is done: retries with
// backoff until the first load, then refreshes every refresh interval (or
// the response's max-age); a file is polled and reloaded when it changes.
func (k *keySet) run(ctx context.Context) {
	wait := retryFirstEvery
	for {
		err := k.refetch(ctx, true)
		var next time.Duration
		switch {
		case k.file != "":
			k.fileStamp = k.stamp()
			next = filePollEvery
		case err != nil && !k.Loaded():
			next, wait = wait, min(wait*2, retryMaxEvery)
		case err != nil:
			next = min(k.minRefetch*3, k.refresh)
		default:
			k.mu.Lock()
			next = k.refresh
			if k.maxAge > 0 {
				next = k.maxAge
			}
			k.mu.Unlock()
		}
		if k.file != "" {
			if !k.waitFileChange(ctx, err != nil) {
				return
			}
			continue
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// waitFileChange polls the file until it changes (or, after a failed load,
// retries after the backoff anyway). It returns false when ctx is done.
func (k *keySet) waitFileChange(ctx context.Context, failed bool) bool {
	tick := time.NewTicker(filePollEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		if s := k.stamp(); s != k.fileStamp || (failed && i >= 4) {
			return true
		}
	}
}

// stamp identifies the file's current version (modification time and size).
func (k *keySet) stamp() string {
	st, err := os.Stat(k.file)
	if err != nil {
		return "missing"
	}
	return st.ModTime().String() + "/" + strconv.FormatInt(st.Size(), 10)
}

// jwksMembers names the members of a JWK set and of its keys that
// encoding/json decodes (go-jose's rawJSONWebKey): ParseJWKS refuses a
// member that matches one only when case is ignored ("KID" beside "kid"),
// which the decoder would read as that member, the last one winning.
type jwksMembers struct {
	Keys []struct {
		Use     json.RawMessage `json:"use"`
		Kty     json.RawMessage `json:"kty"`
		Kid     json.RawMessage `json:"kid"`
		Crv     json.RawMessage `json:"crv"`
		Alg     json.RawMessage `json:"alg"`
		K       json.RawMessage `json:"k"`
		X       json.RawMessage `json:"x"`
		Y       json.RawMessage `json:"y"`
		N       json.RawMessage `json:"n"`
		E       json.RawMessage `json:"e"`
		Pub     json.RawMessage `json:"pub"`
		Priv    json.RawMessage `json:"priv"`
		D       json.RawMessage `json:"d"`
		P       json.RawMessage `json:"p"`
		Q       json.RawMessage `json:"q"`
		Dp      json.RawMessage `json:"dp"`
		Dq      json.RawMessage `json:"dq"`
		Qi      json.RawMessage `json:"qi"`
		X5c     json.RawMessage `json:"x5c"`
		X5u     json.RawMessage `json:"x5u"`
		X5t     json.RawMessage `json:"x5t"`
		X5tS256 json.RawMessage `json:"x5t#S256"`
		KeyOps  json.RawMessage `json:"key_ops"`
		Ext     json.RawMessage `json:"ext"`
	} `json:"keys"`
}
