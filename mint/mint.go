package mint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
)

// Errors of Mint. Each is deterministic: the same Subject fails the same way
// again, so an issuer adapter answers them with a denial, never a retry.
var (
	// ErrInvalidSubject wraps every problem with a Subject: no sub, no
	// client_id, no expiry.
	ErrInvalidSubject = errors.New("mint: invalid subject")
	// ErrExpired means the outer token's expiry is not in the future.
	ErrExpired = errors.New("mint: outer token already expired")
	// ErrClaimTooLarge means a subject claim that an API copies is a JSON
	// value over catalog.MaxClaimValueBytes.
	ErrClaimTooLarge = errors.New("mint: claim value too large")
	// ErrClaimInvalid means a subject claim that an API copies does not
	// encode as JSON.
	ErrClaimInvalid = errors.New("mint: claim value is not valid JSON")
)

// ClaimError is a subject claim that cannot be copied into an inner token.
// Its Err is ErrClaimTooLarge or ErrClaimInvalid. It never holds the value.
type ClaimError struct {
	Claim string
	Err   error
}

func (e *ClaimError) Error() string { return fmt.Sprintf("claim %q: %v", e.Claim, e.Err) }

func (e *ClaimError) Unwrap() error { return e.Err }

// Denied reports whether err is a deterministic refusal of the Subject (bad
// subject, expired, bad claim) rather than a technical failure.
func Denied(err error) bool {
	return errors.Is(err, ErrInvalidSubject) || errors.Is(err, ErrExpired) ||
		errors.Is(err, ErrClaimTooLarge) || errors.Is(err, ErrClaimInvalid) ||
		errors.Is(err, ErrInvalidTarget) || errors.Is(err, ErrInvalidScope)
}

// Subject is what the issuer knows about the outer access token it is
// minting: who it is for and what it grants.
type Subject struct {
	// Sub is the outer token's sub. Required.
	Sub string
	// ClientID is the OAuth client the outer token is issued to. Required.
	ClientID string
	// Scopes are the granted scopes.
	Scopes []string
	// Audience are the granted audiences; they matter only with
	// mint_for = "audience".
	Audience []string
	// Claims are the subject's claims. Only the names an API declares in its
	// claims are copied into its token; a value is any JSON-marshalable Go
	// value (json.RawMessage is copied as is, compacted). JSON null counts as
	// absent.
	Claims map[string]any
	// Exp is the outer token's expiry. Required: no inner token outlives it.
	// It is floored to whole seconds.
	Exp time.Time
}

// Result is what Mint produced.
type Result struct {
	// Claim is the name of the claim that holds the embedded map
	// (minter.claim).
	Claim string
	// Tokens is the embedded map: exposed API name -> inner compact JWS. It
	// is never nil; it is empty when no exposed API gets a token.
	Tokens map[string]string
	// Minted lists every token signed, nested ones included, in signing
	// order. A token reused in two places is listed once.
	Minted []Minted
	// EmbeddedBytes is the number of base64url bytes the embedded map adds
	// to an outer token (`,"<claim>":{...}` once encoded).
	EmbeddedBytes int
	// OverBudget reports EmbeddedBytes > minter.max_embedded_bytes. The
	// tokens are minted anyway; `check` is the gate.
	OverBudget bool
}

// Minted describes one signed inner token, without its text.
type Minted struct {
	API   string
	JTI   string
	KID   string
	Exp   time.Time
	Bytes int
}

// Options tune New. A nil *Options is the zero value.
type Options struct {
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Logger receives the audit log of every mint and warnings. If nil,
	// nothing is logged.
	Logger *zap.Logger
	// Metrics records mints. If nil, nothing is recorded.
	Metrics *Metrics
	// Subjects verifies the subject tokens of token exchange requests
	// (NewExchangeHandler). It belongs to the same configuration as the
	// catalog, so that a reload swaps both at once. If nil, the exchange
	// endpoint is off (404).
	Subjects SubjectVerifier
}

// Minter mints inner tokens for one catalog with its active key. It is
// immutable and safe for concurrent use; a reload builds a new Minter.
type Minter struct {
	cat      *catalog.Catalog
	keys     *keyRing
	apis     map[string]*apiPlan
	roots    []*apiPlan
	now      func() time.Time
	log      *zap.Logger
	audit    *zap.Logger
	metrics  *Metrics
	subjects SubjectVerifier
	clients  map[string]*catalog.ExchangeClient
}

// apiPlan is an API with everything about its tokens that does not depend
// on the subject, computed once.
type apiPlan struct {
	api      *catalog.API
	prefix   []byte // `"iss":"…","aud":"…",`
	lifetime time.Duration
	claims   [][2]string // declared claim name and its JSON-encoded form
	calls    []*apiPlan
}

// reserved are the claim names an API may never copy from the subject; the
// minter's claim is added per catalog.
var reserved = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"client_id": true, "scope": true, "scp": true, "act": true, "may_act": true, "cnf": true,
	"azp": true, "typ": true,
}

// Reserved reports whether name is a claim name that api.claims may not copy,
// given the minter's claim name.
func Reserved(name, minterClaim string) bool { return reserved[name] || name == minterClaim }

// New builds a Minter for cat. cat must have been loaded with
// catalog.KeysRequire: the active signing key's private key signs, and every
// declared key is published in the JWKS. New starts no goroutines.
func New(cat *catalog.Catalog, opts *Options) (*Minter, error) {
	if cat == nil || cat.Minter == nil {
		return nil, errors.New("mint: catalog has no minter block")
	}
	if opts == nil {
		opts = &Options{}
	}
	keys, err := newKeyRing(cat.Minter)
	if err != nil {
		return nil, err
	}
	m := &Minter{
		cat:     cat,
		keys:    keys,
		apis:    make(map[string]*apiPlan, len(cat.APIs)),
		now:     opts.Now,
		log:     opts.Logger,
		metrics: opts.Metrics,
	}
	if opts.Subjects != nil && len(cat.ExchangeClients) > 0 {
		m.subjects = opts.Subjects
		m.clients = make(map[string]*catalog.ExchangeClient, len(cat.ExchangeClients))
		for _, c := range cat.ExchangeClients {
			m.clients[c.Name] = c
		}
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	m.log = m.log.Named("mint")
	m.audit = m.log.Named("audit")
	iss := jsonString(cat.Minter.Issuer)
	for _, a := range cat.APIs {
		p := &apiPlan{api: a, lifetime: a.Lifetime}
		if p.lifetime <= 0 {
			p.lifetime = cat.Minter.DefaultLifetime
		}
		if p.lifetime <= 0 {
			p.lifetime = catalog.DefaultLifetime
		}
		p.prefix = []byte(`"iss":` + iss + `,"aud":` + jsonString(a.Audience) + `,`)
		for _, c := range a.Claims {
			if Reserved(c, cat.Minter.Claim) {
				return nil, fmt.Errorf("mint: api %q copies reserved claim %q", a.Name, c)
			}
			p.claims = append(p.claims, [2]string{c, jsonString(c)})
		}
		m.apis[a.Name] = p
	}
	for _, a := range cat.APIs {
		p := m.apis[a.Name]
		for _, callee := range a.Calls {
			cp := m.apis[callee]
			if cp == nil {
				return nil, fmt.Errorf("mint: api %q calls unknown api %q", a.Name, callee)
			}
			p.calls = append(p.calls, cp)
		}
		if a.Exposed {
			m.roots = append(m.roots, p)
		}
	}
	sort.Slice(m.roots, func(i, j int) bool { return m.roots[i].api.Name < m.roots[j].api.Name })
	if err := checkAcyclic(m.apis); err != nil {
		return nil, err
	}
	return m, nil
}

// checkAcyclic refuses a call graph with a cycle, which would never end
// minting. catalog refuses them too; this is the belt to its braces.
func checkAcyclic(apis map[string]*apiPlan) error {
	const (
		visiting = 1
		done     = 2
	)
	state := make(map[*apiPlan]int, len(apis))
	var visit func(p *apiPlan) error
	visit = func(p *apiPlan) error {
		switch state[p] {
		case visiting:
			return fmt.Errorf("mint: api %q is part of a calls cycle", p.api.Name)
		case done:
			return nil
		}
		state[p] = visiting
		for _, c := range p.calls {
			if err := visit(c); err != nil {
				return err
			}
		}
		state[p] = done
		return nil
	}
	for _, p := range apis {
		if err := visit(p); err != nil {
			return err
		}
	}
	return nil
}

// Catalog returns the catalog the Minter was built from.
func (m *Minter) Catalog() *catalog.Catalog { return m.cat }

// Claim returns the name of the claim that holds embedded tokens.
func (m *Minter) Claim() string { return m.cat.Minter.Claim }

// KeyID returns the kid of the active signing key.
func (m *Minter) KeyID() string { return m.keys.kid }

// JWKS returns the JSON of the minter's public key set (RFC 7517): the active
// key and every retired one, each with kid, alg and use "sig". The caller
// must not modify the slice.
func (m *Minter) JWKS() []byte { return m.keys.jwks }

// Mint mints the embedded map for s: a token for every exposed API that s may
// have, each embedding the tokens of the APIs it calls, as DESIGN.md's
// "Tokens" section says. Errors for which Denied is true are the Subject's
// fault; others are technical (ctx done, signing failure).
func (m *Minter) Mint(ctx context.Context, s Subject) (Result, error) {
	start := time.Now()
	res := Result{Claim: m.Claim(), Tokens: map[string]string{}}
	st, outerExp, err := m.newState(&s, m.now())
	if err != nil {
		return res, err
	}
	// Check every claim that will be copied before signing anything, so
	// that a refused claim costs no signature.
	if err := st.checkClaims(m.roots, map[*apiPlan]bool{}); err != nil {
		return res, err
	}
	for _, p := range m.roots {
		if !st.eligible(p) {
			continue
		}
		tok, err := st.mint(ctx, p, outerExp)
		if err != nil {
			return Result{Claim: res.Claim, Tokens: map[string]string{}}, err
		}
		res.Tokens[p.api.Name] = tok
	}
	res.Minted = st.minted
	for _, t := range res.Minted {
		m.metrics.minted(t.API)
	}
	res.EmbeddedBytes = EmbeddedBytes(res.Claim, res.Tokens)
	budget := m.cat.Minter.MaxEmbeddedBytes
	res.OverBudget = budget > 0 && res.EmbeddedBytes > budget
	m.metrics.observe(time.Since(start), res.EmbeddedBytes, res.OverBudget)
	m.auditLog(&s, &res)
	return res, nil
}

// newState checks s and prepares one minting of tokens for it at now. It
// returns the outer expiry in Unix seconds: no token minted outlives it. The
// embedding (Mint) and the exchange (Issue) paths share it, so that both
// narrow and sign alike.
func (m *Minter) newState(s *Subject, now time.Time) (*mintState, int64, error) {
	switch {
	case s.Sub == "":
		return nil, 0, fmt.Errorf("%w: no sub", ErrInvalidSubject)
	case s.ClientID == "":
		return nil, 0, fmt.Errorf("%w: no client_id", ErrInvalidSubject)
	case s.Exp.IsZero():
		return nil, 0, fmt.Errorf("%w: no expiry", ErrInvalidSubject)
	}
	outerExp := floorUnix(s.Exp)
	if outerExp <= floorUnix(now) {
		return nil, 0, ErrExpired
	}
	st := &mintState{
		m:       m,
		s:       s,
		now:     floorUnix(now),
		nowTime: now,
		granted: make(map[string]bool, len(s.Scopes)),
		sub:     jsonString(s.Sub),
		client:  jsonString(s.ClientID),
		values:  map[string][]byte{},
		memo:    map[memoKey]string{},
	}
	for _, sc := range s.Scopes {
		st.granted[sc] = true
	}
	if m.cat.Minter.MintFor == catalog.MintForAudience {
		st.audiences = make(map[string]bool, len(s.Audience))
		for _, a := range s.Audience {
			st.audiences[a] = true
		}
	}
	return st, outerExp, nil
}

// auditLog records one mint: client, APIs, jtis, a subject fingerprint —
// never a token.
func (m *Minter) auditLog(s *Subject, res *Result) {
	apis := make([]string, len(res.Minted))
	jtis := make([]string, len(res.Minted))
	for i, t := range res.Minted {
		apis[i] = t.API
		jtis[i] = t.JTI
	}
	if res.OverBudget {
		m.log.Warn("embedded map over budget: minted anyway",
			zap.String(fieldReason, reasonOverBudget),
			zap.String(fieldClient, s.ClientID),
			zap.Int(fieldBytes, res.EmbeddedBytes),
			zap.Int(fieldBudget, m.cat.Minter.MaxEmbeddedBytes))
	}
	m.audit.Info("minted",
		zap.String(fieldClient, s.ClientID),
		zap.String(fieldSubjectFP, Fingerprint(s.Sub)),
		zap.String(fieldKID, m.keys.kid),
		zap.Strings(fieldAPIs, apis),
		zap.Strings(fieldJTIs, jtis),
		zap.Int(fieldBytes, res.EmbeddedBytes))
}

func floorUnix(t time.Time) int64 {
	// Unix floors for times after 1970; before, a token makes no sense.
	return t.Unix()
}

// scopeOf returns granted ∩ the API's scopes in the API's declared order.
func scopeOf(p *apiPlan, granted map[string]bool) []string {
	var out []string
	for _, sc := range p.api.Scopes {
		if granted[sc] {
			out = append(out, sc)
		}
	}
	return out
}

// mintState is one Mint call.
type mintState struct {
	m         *Minter
	s         *Subject
	now       int64
	nowTime   time.Time
	granted   map[string]bool
	audiences map[string]bool // nil unless mint_for = "audience"
	sub       string          // JSON-encoded
	client    string          // JSON-encoded
	values    map[string][]byte
	memo      map[memoKey]string
	minted    []Minted
	// act is the compact JSON of the act claim (RFC 8693 4.1) of every
	// token an exchange mints; nil when embedding.
	act []byte
}

// memoKey names a token that can be reused: the same API with the same exp
// is the same token, wherever it is nested.
type memoKey struct {
	api string
	exp int64
}

// eligible reports whether the subject may have a token for p.
func (st *mintState) eligible(p *apiPlan) bool {
	if st.audiences != nil && !st.audiences[p.api.Audience] {
		return false
	}
	if len(p.api.Scopes) == 0 {
		return true
	}
	for _, sc := range p.api.Scopes {
		if st.granted[sc] {
			return true
		}
	}
	return false
}

// checkClaims encodes the claims of every eligible API reachable from
// plans, reporting the first that cannot be copied.
func (st *mintState) checkClaims(plans []*apiPlan, seen map[*apiPlan]bool) error {
	for _, p := range plans {
		if seen[p] || !st.eligible(p) {
			continue
		}
		seen[p] = true
		for _, c := range p.claims {
			if _, err := st.value(c[0]); err != nil {
				return err
			}
		}
		if err := st.checkClaims(p.calls, seen); err != nil {
			return err
		}
	}
	return nil
}

// mint signs p's token, never valid past bound (Unix seconds), embedding the
// tokens of the eligible APIs it calls.
func (st *mintState) mint(ctx context.Context, p *apiPlan, bound int64) (string, error) {
	exp := st.nowTime.Add(p.lifetime).Unix()
	if exp > bound {
		exp = bound
	}
	key := memoKey{p.api.Name, exp}
	if tok, ok := st.memo[key]; ok {
		return tok, nil
	}
	var nested map[string]string
	for _, c := range p.calls {
		if !st.eligible(c) {
			continue
		}
		tok, err := st.mint(ctx, c, exp)
		if err != nil {
			return "", err
		}
		if nested == nil {
			nested = make(map[string]string, len(p.calls))
		}
		nested[c.api.Name] = tok
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	jti := newJTI()
	payload, err := st.payload(p, exp, jti, nested)
	if err != nil {
		return "", err
	}
	tok, err := st.m.keys.sign(payload)
	if err != nil {
		return "", fmt.Errorf("mint: sign %s: %w", p.api.Name, err)
	}
	st.memo[key] = tok
	st.minted = append(st.minted, Minted{API: p.api.Name, JTI: jti, KID: st.m.keys.kid, Exp: time.Unix(exp, 0), Bytes: len(tok)})
	return tok, nil
}

// payload serializes the claims of p's token compactly and in a fixed order:
// iss, aud, sub, client_id, exp, iat, jti, scope, act (exchange only), the
// declared claims in declared order, then the nested map with its keys
// sorted.
func (st *mintState) payload(p *apiPlan, exp int64, jti string, nested map[string]string) ([]byte, error) {
	size := 256 + len(p.prefix) + len(st.sub) + len(st.client) + len(st.act)
	for k, v := range nested {
		size += len(k) + len(v) + 8
	}
	for _, c := range p.claims {
		size += len(c[1]) + len(st.values[c[0]]) + 2
	}
	var b bytes.Buffer
	b.Grow(size)
	b.WriteByte('{')
	b.Write(p.prefix)
	b.WriteString(`"sub":`)
	b.WriteString(st.sub)
	b.WriteString(`,"client_id":`)
	b.WriteString(st.client)
	var num [20]byte
	b.WriteString(`,"exp":`)
	b.Write(strconv.AppendInt(num[:0], exp, 10))
	b.WriteString(`,"iat":`)
	b.Write(strconv.AppendInt(num[:0], st.now, 10))
	b.WriteString(`,"jti":"`)
	b.WriteString(jti)
	b.WriteByte('"')
	if len(p.api.Scopes) > 0 {
		b.WriteString(`,"scope":`)
		b.WriteString(jsonString(strings.Join(scopeOf(p, st.granted), " ")))
	}
	if st.act != nil {
		b.WriteString(`,"act":`)
		b.Write(st.act)
	}
	for _, c := range p.claims {
		v, err := st.value(c[0])
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		b.WriteByte(',')
		b.WriteString(c[1])
		b.WriteByte(':')
		b.Write(v)
	}
	if len(nested) > 0 {
		b.WriteByte(',')
		b.WriteString(jsonString(st.m.Claim()))
		b.WriteByte(':')
		b.Write(mapJSON(nested))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// value returns the compact JSON of the subject's claim name, nil when the
// subject does not have it (or has null), encoding each claim once per Mint.
func (st *mintState) value(name string) ([]byte, error) {
	if v, ok := st.values[name]; ok {
		return v, nil
	}
	raw, ok := st.s.Claims[name]
	var v []byte
	if ok {
		enc, err := encodeValue(raw)
		if err != nil {
			return nil, &ClaimError{Claim: name, Err: ErrClaimInvalid}
		}
		if string(enc) != "null" {
			v = enc
		}
		if len(v) > catalog.MaxClaimValueBytes {
			return nil, &ClaimError{Claim: name, Err: ErrClaimTooLarge}
		}
	}
	st.values[name] = v
	return v, nil
}
