package catalog

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// reservedClaims may not be copied from the subject into inner tokens: they
// are set by the minter or mean something to verifiers (DESIGN.md, Tokens).
var reservedClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "scp", "act", "may_act", "cnf", "azp", "typ"}

// ReservedClaim reports whether name may not be copied into an inner token
// whose embedded-map claim is claim.
func ReservedClaim(name, claim string) bool { return name == claim || contains(reservedClaims, name) }

// once tracks blocks that may appear at most once across all files.
type once struct {
	kind  string
	first *hcl.Range
}

// take reports whether the block at rng is the first; a later one is an
// error pointing at it and naming the first.
func (o *once) take(rng hcl.Range, d *diagnostics) bool {
	if o.first == nil {
		r := rng
		o.first = &r
		return true
	}
	d.errorf(rng, "Duplicate "+o.kind+" block",
		"A configuration holds at most one %s block; the first one is at %s. Remove one, or run the two with separate --config sets.", o.kind, pos(*o.first))
	return false
}

// declarations records where each name of one kind of labelled block was
// first declared.
type declarations map[string]hcl.Range

// first records name, declared by the block at def, and reports whether it
// is the first of its name; a later one is an error at its label whose
// detail (a format of the name and the first position) names the first.
func (m declarations) first(name string, label, def hcl.Range, summary, detail string, d *diagnostics) bool {
	if prev, dup := m[name]; dup {
		d.errorf(label, summary, detail, name, pos(prev))
		return false
	}
	m[name] = def
	return true
}

// apiDecl is an api block with the context it was decoded in.
type apiDecl struct {
	raw        *rawAPI
	ctx        *hcl.EvalContext
	api        *API
	scopeRngs  []hcl.Range
	callRngs   []hcl.Range
	claimsRngs []hcl.Range
}

// build turns the decoded files into a Catalog and runs every semantic
// check, collecting all diagnostics rather than stopping at the first.
func (l *loader) build(files []*decodedFile) (*Catalog, hcl.Diagnostics) {
	d := &diagnostics{}
	cat := &Catalog{apiByName: map[string]*API{}, apiByAudience: map[string]*API{}}

	// The minter first: APIs need its claim name and default lifetime.
	minterOnce := &once{kind: "minter"}
	for _, f := range files {
		for _, rm := range f.raw.Minters {
			if minterOnce.take(rm.DefRange, d) {
				cat.Minter = l.buildMinter(rm, f, cat, d)
			}
		}
	}
	if cat.Minter == nil {
		d.list = append(d.list, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing minter block",
			Detail:   "Every configuration needs one minter block: it names the issuer of inner tokens and where their public keys are. Add it, or pass the folder that holds it with --config.",
			Subject:  firstFileRange(files),
		})
		return nil, d.list
	}

	// APIs: names and audiences are unique across all files.
	var decls []*apiDecl
	audFirst := map[string]hcl.Range{}
	apiNames := declarations{}
	for _, f := range files {
		for _, ra := range f.raw.APIs {
			if !validName(ra.Name) {
				d.errorf(ra.LabelRange, "Invalid API name",
					"The API name %q must start with a letter or digit and hold only letters, digits, '-', '_' and '.', at most 64 characters: it appears in realms, claim keys and metric labels.", ra.Name)
				continue
			}
			if !apiNames.first(ra.Name, ra.LabelRange, ra.DefRange, "Duplicate API name", "The API %q is already declared at %s. Each api block needs its own name.", d) {
				continue
			}
			decl := l.buildAPI(ra, f.ctx(l), cat.Minter, d)
			if first, dup := audFirst[decl.api.Audience]; dup && decl.api.Audience != "" {
				d.errorf(ra.AudienceRange, "Duplicate API audience",
					"The audience %q is already used by the API declared at %s. A token's aud must name exactly one API.", decl.api.Audience, pos(first))
			} else {
				audFirst[decl.api.Audience] = ra.AudienceRange
			}
			decls = append(decls, decl)
			cat.apiByName[ra.Name] = decl.api
			cat.apiByAudience[decl.api.Audience] = decl.api
		}
	}
	checkGraph(decls, d)
	checkSharedScopes(decls, d)
	for _, dc := range decls {
		cat.APIs = append(cat.APIs, dc.api)
	}
	sort.Slice(cat.APIs, func(i, j int) bool { return cat.APIs[i].Name < cat.APIs[j].Name })

	sidecarOnce, hookOnce, exchangeOnce := &once{kind: "sidecar"}, &once{kind: "hook"}, &once{kind: "exchange"}
	trustNames, clientNames := declarations{}, declarations{}
	for _, f := range files {
		ctx := f.ctx(l)
		for _, rs := range f.raw.Sidecars {
			if sidecarOnce.take(rs.DefRange, d) {
				cat.Sidecar = l.buildSidecar(rs, f, ctx, cat, d)
			}
		}
		for _, rt := range f.raw.Trusts {
			if !trustNames.first(rt.Name, rt.LabelRange, rt.DefRange, "Duplicate trust name", "The trust %q is already declared at %s.", d) {
				continue
			}
			if t := l.buildTrust(rt, f, ctx, cat, d); t != nil {
				cat.Trusts = append(cat.Trusts, t)
			}
		}
		for _, rh := range f.raw.Hooks {
			if hookOnce.take(rh.DefRange, d) {
				cat.Hook = l.buildHook(rh, f, ctx, d)
			}
		}
		for _, rc := range f.raw.ExchangeClients {
			if !clientNames.first(rc.Name, rc.LabelRange, rc.DefRange, "Duplicate exchange client", "The exchange_client %q is already declared at %s.", d) {
				continue
			}
			if c := l.buildExchangeClient(rc, f, ctx, cat, d); c != nil {
				cat.ExchangeClients = append(cat.ExchangeClients, c)
			}
		}
		for _, re := range f.raw.Exchanges {
			if exchangeOnce.take(re.DefRange, d) {
				cat.Exchange = l.buildExchange(re, f, ctx, d)
			}
		}
	}
	sort.Slice(cat.ExchangeClients, func(i, j int) bool { return cat.ExchangeClients[i].Name < cat.ExchangeClients[j].Name })
	checkDuplicateIssuers(files, cat, d)
	checkLifetimes(decls, files, cat, d)
	l.checkHookPublic(cat, hookOnce.first, d)
	return cat, d.list
}

func firstFileRange(files []*decodedFile) *hcl.Range {
	if len(files) == 0 {
		return nil
	}
	return &hcl.Range{Filename: files[0].name, Start: hcl.InitialPos, End: hcl.InitialPos}
}

// ctx returns the evaluation context of the file (built once).
func (f *decodedFile) ctx(l *loader) *hcl.EvalContext {
	if f.evalCtx == nil {
		f.evalCtx = l.evalContext(f.dir)
	}
	return f.evalCtx
}

func (l *loader) buildMinter(rm *rawMinter, f *decodedFile, cat *Catalog, d *diagnostics) *Minter {
	ctx := f.ctx(l)
	m := &Minter{
		Issuer:           rm.Issuer,
		Claim:            DefaultClaim,
		DefaultLifetime:  duration(rm.DefaultLifetime, rm.LifetimeRange, "default_lifetime", DefaultLifetime, 0, MaxLifetime, d),
		MaxEmbeddedBytes: DefaultMaxEmbeddedBytes,
		OuterBaseBytes:   DefaultOuterBaseBytes,
		MintFor:          MintForScope,
	}
	if m.Issuer == "" && present(rm.IssuerRange) {
		d.errorf(rm.IssuerRange, "Empty minter issuer", "The minter issuer is the iss of every inner token; it must not be empty.")
	}
	if rm.Claim != nil {
		m.Claim = *rm.Claim
		if m.Claim == "" || contains(reservedClaims, m.Claim) || strings.ContainsAny(m.Claim, " \t\"") {
			d.errorf(rm.ClaimRange, "Invalid minter claim", "The claim %q cannot hold embedded tokens: it must be a non-empty name without spaces or quotes, and not a registered claim (%s).", m.Claim, strings.Join(reservedClaims, " "))
		}
	}
	switch {
	case rm.JWKSURL != nil && rm.JWKSFile != nil:
		d.errorf(rm.FileRange, "Conflicting key sources", "The minter has both jwks_url and jwks_file; keep exactly one: it is where sidecars get the minter's public keys.")
	case rm.JWKSURL != nil:
		if checkURL(*rm.JWKSURL, rm.URLRange, "jwks_url", d) {
			m.JWKSURL = *rm.JWKSURL
		}
	case rm.JWKSFile != nil:
		m.JWKSFile = resolvePath(f.dir, *rm.JWKSFile)
		cat.KeyFiles = append(cat.KeyFiles, m.JWKSFile)
		l.checkOptionalFile(m.JWKSFile, rm.FileRange, "minter jwks_file", d)
	default:
		d.errorf(rm.DefRange, "Missing key source", "The minter needs exactly one of jwks_url and jwks_file: where sidecars get its public keys.")
	}
	if rm.CAFile != nil {
		m.CAFile = resolvePath(f.dir, *rm.CAFile)
		cat.KeyFiles = append(cat.KeyFiles, m.CAFile)
	}
	if rm.MaxEmbeddedBytes != nil {
		if *rm.MaxEmbeddedBytes <= 0 || *rm.MaxEmbeddedBytes > 1<<20 {
			d.errorf(rm.MaxRange, "Size out of range", "max_embedded_bytes is %d; it must be between 1 and %d.", *rm.MaxEmbeddedBytes, 1<<20)
		} else {
			m.MaxEmbeddedBytes = *rm.MaxEmbeddedBytes
		}
	}
	if rm.OuterBaseBytes != nil {
		if *rm.OuterBaseBytes < 0 || *rm.OuterBaseBytes > 1<<20 {
			d.errorf(rm.BaseRange, "Size out of range", "outer_base_bytes is %d; it must be between 0 and %d.", *rm.OuterBaseBytes, 1<<20)
		} else {
			m.OuterBaseBytes = *rm.OuterBaseBytes
		}
	}
	if rm.MintFor != nil {
		switch MintFor(*rm.MintFor) {
		case MintForScope, MintForAudience:
			m.MintFor = MintFor(*rm.MintFor)
		default:
			d.errorf(rm.MintForRange, "Invalid mint_for", "mint_for is %q; it must be \"scope\" or \"audience\".", *rm.MintFor)
		}
	}

	// Signing keys.
	kids := declarations{}
	var declared []string // every kid declared, valid or not, for active_key
	for _, rk := range rm.SigningKeys {
		if !kids.first(rk.ID, rk.LabelRange, rk.DefRange, "Duplicate signing key", "The kid %q is already declared at %s.", d) {
			continue
		}
		declared = append(declared, rk.ID)
		if rk.ID == "" || strings.ContainsAny(rk.ID, "\"\\/ ") {
			d.errorf(rk.LabelRange, "Invalid key ID", "The kid %q must be non-empty, without spaces, quotes or slashes.", rk.ID)
			continue
		}
		if !present(rk.AlgRange) {
			continue // gohcl reported the missing argument
		}
		alg, ok := parseAlg(rk.Algorithm, rk.AlgRange, signingAlgs, d)
		if !ok {
			continue
		}
		k := &SigningKey{ID: rk.ID, Algorithm: alg, PrivateKeyFile: resolvePath(f.dir, rk.PrivateKeyFile)}
		if rk.PrivateKeyFile == "" {
			if !present(rk.FileRange) {
				continue // gohcl reported the missing argument
			}
			d.errorf(rk.FileRange, "Empty private key path", "The signing key %q needs private_key_file: a PKCS#8 PEM file.", rk.ID)
			continue
		}
		cat.KeyFiles = append(cat.KeyFiles, k.PrivateKeyFile)
		l.loadKey(k, rk, d)
		m.SigningKeys = append(m.SigningKeys, k)
	}

	// Algorithms accepted for inner tokens.
	algs, rngs := strList(rm.Algorithms, ctx, d)
	for i, a := range algs {
		if alg, ok := parseAlg(a, rngs[i], nil, d); ok {
			m.Algorithms = append(m.Algorithms, alg)
		}
	}
	if isNull(rm.Algorithms) {
		for _, k := range m.SigningKeys {
			if !containsAlg(m.Algorithms, k.Algorithm) {
				m.Algorithms = append(m.Algorithms, k.Algorithm)
			}
		}
		if len(rm.SigningKeys) == 0 {
			d.errorf(rm.DefRange, "Missing algorithms", "Without signing_key blocks the minter needs algorithms: the algorithms accepted for inner tokens, such as [\"EdDSA\"].")
		}
	} else if len(algs) == 0 {
		d.errorf(rm.AlgRange, "Empty algorithms", "The minter algorithms list is empty; name at least one, such as [\"EdDSA\"].")
	}

	// The active key.
	switch {
	case rm.ActiveKey != nil:
		k := m.Key(*rm.ActiveKey)
		if k == nil {
			if _, ok := kids[*rm.ActiveKey]; ok {
				break // its signing_key block has its own error
			}
			names := "(none declared)"
			if len(declared) > 0 {
				names = strings.Join(declared, ", ")
			}
			d.errorf(rm.ActiveRange, "Unknown signing key", "active_key %q names no signing_key block of the minter. Declare it, or name one of: %s.", *rm.ActiveKey, names)
			break
		}
		m.ActiveKey = k.ID
		if !isNull(rm.Algorithms) && !containsAlg(m.Algorithms, k.Algorithm) {
			d.errorf(rm.ActiveRange, "Active key algorithm not accepted", "The active key %q signs %s, which is not in the minter's algorithms; its tokens would be refused.", k.ID, k.Algorithm)
		}
	case len(m.SigningKeys) == 1:
		m.ActiveKey = m.SigningKeys[0].ID
	case len(m.SigningKeys) > 1:
		d.errorf(rm.DefRange, "Missing active_key", "The minter has %d signing keys; set active_key to the kid that signs.", len(m.SigningKeys))
	}
	return m
}

func (l *loader) buildAPI(ra *rawAPI, ctx *hcl.EvalContext, m *Minter, d *diagnostics) *apiDecl {
	a := &API{
		Name:     ra.Name,
		Audience: ra.Audience,
		Lifetime: duration(ra.Lifetime, ra.LifetimeRange, "lifetime", m.DefaultLifetime, 0, MaxLifetime, d),
		Exposed:  ra.Exposed == nil || *ra.Exposed,
	}
	decl := &apiDecl{raw: ra, ctx: ctx, api: a}
	if a.Audience == "" && present(ra.AudienceRange) {
		d.errorf(ra.AudienceRange, "Empty audience", "The API %q needs a non-empty audience: the aud of its inner tokens.", a.Name)
	}
	scopes, srngs := strList(ra.Scopes, ctx, d)
	for i, s := range scopes {
		switch {
		case !validScope(s):
			d.errorf(srngs[i], "Invalid scope", "The scope %q is not an RFC 6749 scope-token: printable ASCII without spaces, quotes or backslashes.", s)
		case contains(a.Scopes, s):
			d.errorf(srngs[i], "Duplicate scope", "The API %q lists the scope %q twice.", a.Name, s)
		default:
			a.Scopes = append(a.Scopes, s)
			decl.scopeRngs = append(decl.scopeRngs, srngs[i])
		}
	}
	claims, crngs := strList(ra.Claims, ctx, d)
	for i, c := range claims {
		switch {
		case c == "":
			d.errorf(crngs[i], "Empty claim name", "The API %q lists an empty claim name.", a.Name)
		case ReservedClaim(c, m.Claim):
			d.errorf(crngs[i], "Reserved claim name",
				"The API %q may not copy %q: the minter sets it, or verifiers give it meaning. Reserved: %s and the minter claim %q.", a.Name, c, strings.Join(reservedClaims, " "), m.Claim)
		case contains(a.Claims, c):
			d.errorf(crngs[i], "Duplicate claim", "The API %q lists the claim %q twice.", a.Name, c)
		default:
			a.Claims = append(a.Claims, c)
			decl.claimsRngs = append(decl.claimsRngs, crngs[i])
		}
	}
	calls, rngs := strList(ra.Calls, ctx, d)
	for i, c := range calls {
		if contains(a.Calls, c) {
			d.errorf(rngs[i], "Duplicate call", "The API %q lists %q twice in calls.", a.Name, c)
			continue
		}
		a.Calls = append(a.Calls, c)
		decl.callRngs = append(decl.callRngs, rngs[i])
	}
	return decl
}

// checkGraph checks that calls name known APIs and that the call graph has
// no cycle; each cycle is reported once, at the call that closes it.
func checkGraph(decls []*apiDecl, d *diagnostics) {
	byName := map[string]*apiDecl{}
	for _, dc := range decls {
		byName[dc.api.Name] = dc
	}
	for _, dc := range decls {
		var kept []string
		for i, c := range dc.api.Calls {
			switch {
			case c == dc.api.Name:
				d.errorf(dc.callRngs[i], "Cycle in calls", "The API %q calls itself: %s -> %s. A token cannot embed a token for its own API.", c, c, c)
			case byName[c] == nil:
				d.errorf(dc.callRngs[i], "Unknown API in calls", "The API %q calls %q, which no api block declares.%s", dc.api.Name, c, suggest(c, byName))
			default:
				kept = append(kept, c)
				continue
			}
		}
		dc.api.Calls = kept
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	reported := map[string]bool{}
	var stack []string
	var visit func(dc *apiDecl)
	visit = func(dc *apiDecl) {
		color[dc.api.Name] = grey
		stack = append(stack, dc.api.Name)
		for _, c := range dc.api.Calls {
			callee := byName[c]
			switch color[c] {
			case grey:
				start := indexOf(stack, c)
				cycle := append(append([]string{}, stack[start:]...), c)
				key := cycleKey(cycle[:len(cycle)-1])
				if !reported[key] {
					reported[key] = true
					d.errorf(findCallRange(dc, c), "Cycle in calls",
						"The call graph has a cycle: %s. Tokens nest along calls, so a cycle would nest forever; remove one of these calls.", strings.Join(cycle, " -> "))
				}
			case white:
				visit(callee)
			}
		}
		stack = stack[:len(stack)-1]
		color[dc.api.Name] = black
	}
	for _, dc := range decls {
		if color[dc.api.Name] == white {
			visit(dc)
		}
	}
	if len(reported) > 0 {
		// Break cycles so that later walks of the graph (sizes) terminate.
		for _, dc := range decls {
			dc.api.Calls = nil
		}
		return
	}
	called := map[string]bool{}
	for _, dc := range decls {
		for _, c := range dc.api.Calls {
			called[c] = true
		}
	}
	for _, dc := range decls {
		if !dc.api.Exposed && !called[dc.api.Name] {
			d.warnf(dc.raw.DefRange, "Unreachable API",
				"The API %q is not exposed and no API calls it, so no token is ever minted for it. Expose it, or add it to a caller's calls.", dc.api.Name)
		}
	}
}

// findCallRange finds the range of the element callee in the raw calls list.
func findCallRange(dc *apiDecl, callee string) hcl.Range {
	vals, rngs := strList(dc.raw.Calls, dc.ctx, &diagnostics{})
	for i, v := range vals {
		if v == callee {
			return rngs[i]
		}
	}
	return dc.raw.CallsRange
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// cycleKey identifies a cycle whatever node it is entered from.
func cycleKey(nodes []string) string {
	c := append([]string{}, nodes...)
	sort.Strings(c)
	return strings.Join(c, "\x00")
}

// suggest proposes a declared name close to s.
func suggest(s string, names map[string]*apiDecl) string {
	best, bestD := "", 3
	for n := range names {
		if dd := levenshtein(s, n); dd < bestD || (dd == bestD && n < best) {
			best, bestD = n, dd
		}
	}
	if best == "" {
		return " Declare it, or remove it from calls."
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// checkSharedScopes warns when two APIs share a scope: a token granted it
// reaches both, which is often not what was meant.
func checkSharedScopes(decls []*apiDecl, d *diagnostics) {
	owner := map[string]*apiDecl{}
	for _, dc := range decls {
		for i, s := range dc.api.Scopes {
			if first, ok := owner[s]; ok {
				d.warnf(dc.scopeRngs[i], "Shared scope",
					"The scope %q is also declared by the API %q (%s): a token granted it gets inner tokens for both. Give each API its own scopes unless that is intended.", s, first.api.Name, pos(first.raw.ScopesRange))
				continue
			}
			owner[s] = dc
		}
	}
}
