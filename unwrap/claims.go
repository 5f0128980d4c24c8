package unwrap

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Claims are the decoded claims of a verified token.
type Claims struct {
	Issuer   string
	Subject  string
	ClientID string
	// ID is the jti.
	ID       string
	Audience []string
	// Expiry, NotBefore and IssuedAt are zero when the claim is absent.
	Expiry    time.Time
	NotBefore time.Time
	IssuedAt  time.Time
	// Scopes is the union of scope (space-separated) and scp (array), in
	// order, without duplicates.
	Scopes []string
	// HasScopeClaim reports whether scope or scp was present.
	HasScopeClaim bool
	// Embedded is the embedded map found at the claim path: API name to
	// inner token. It is nil when the claim is absent or null.
	Embedded map[string]string
	// Extra holds the outer token's other claims, undecoded: its top-level
	// members except the registered ones held above (iss, sub, client_id,
	// jti, aud, exp, nbf, iat, scope, scp), the member that leads to the
	// embedded map, and, for an introspected token, the RFC 7662 members
	// that describe the answer (active, token_type, token_use). When the
	// claim path is nested (Hydra's ext.embedded_tokens), the members of
	// the object that holds the map (ext) are added beside them, except
	// the map itself, registered names, act (RFC 8693 4.1 places it at the
	// top level) and names the top level already has. It is nil when there
	// are none, and for inner (minter) tokens. Its values must not be
	// modified: cached claims share them.
	Extra map[string]json.RawMessage
	// Until, when not zero, bounds how long anything derived from these
	// claims may be cached or trusted without asking again: for an
	// introspected token, the time of the introspection plus the trust's
	// introspection_cache (the revocation latency). Zero for JWTs.
	Until time.Time
}

// HasScope reports whether s is one of the token's scopes.
func (c *Claims) HasScope(s string) bool {
	for _, x := range c.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// covers reports whether the token grants at least one of scopes; an empty
// scopes list is covered by every token.
func (c *Claims) covers(scopes []string) bool {
	if len(scopes) == 0 {
		return true
	}
	for _, s := range scopes {
		if c.HasScope(s) {
			return true
		}
	}
	return false
}

// Decoding errors. They never hold token text.
var (
	errDots       = errors.New("not a compact JWS: want exactly three parts")
	errBase64     = errors.New("bad base64url")
	errNotObject  = errors.New("not a JSON object")
	errTrailing   = errors.New("trailing data after JSON")
	errDuplicate  = errors.New("duplicate member name")
	errTooDeep    = errors.New("JSON nested too deeply")
	errClaimType  = errors.New("claim of the wrong JSON type")
	errEmbedded   = errors.New("embedded map of the wrong JSON type")
	errBadNumber  = errors.New("bad NumericDate")
	errCritHeader = errors.New("crit header present")
)

// maxJSONDepth bounds nesting in headers and claims.
const maxJSONDepth = 32

// checkJSON reports an error when data is not exactly one JSON object, or
// holds duplicate member names at any depth (RFC 7519 4, RFC 8725 3.1 allow
// parsers to accept them; we never do).
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return errNotObject
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errNotObject
	}
	if err := checkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errTrailing
	}
	return nil
}

func checkObject(dec *json.Decoder, depth int) error {
	if depth > maxJSONDepth {
		return errTooDeep
	}
	seen := make(map[string]struct{}, 8)
	for {
		tok, err := dec.Token()
		if err != nil {
			return errNotObject
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return nil
		}
		key, ok := tok.(string)
		if !ok {
			return errNotObject
		}
		if _, dup := seen[key]; dup {
			return errDuplicate
		}
		seen[key] = struct{}{}
		if err := checkValue(dec, depth); err != nil {
			return err
		}
	}
}

func checkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return errNotObject
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return checkObject(dec, depth+1)
	case '[':
		if depth+1 > maxJSONDepth {
			return errTooDeep
		}
		for dec.More() {
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return errNotObject
		}
		return nil
	}
	return errNotObject
}

// header is the JOSE header of a token, as far as we read it. Keys and
// URLs in the header (jwk, jku, x5u, x5c) are never read: keys come from the
// issuer's configured key set only.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  *string         `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// normTyp lower-cases typ and strips an "application/" prefix (RFC 7515
// 4.1.9). A missing typ is "".
func (h *header) normTyp() string {
	if h.Typ == nil {
		return ""
	}
	t := strings.ToLower(*h.Typ)
	return strings.TrimPrefix(t, "application/")
}

// numericDate is a JSON number of seconds since the epoch; a string or any
// other type is refused.
type numericDate struct {
	set bool
	t   time.Time
}

func (n *numericDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || !(b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) {
		return errClaimType
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return errBadNumber
	}
	sec := math.Floor(f)
	n.set, n.t = true, time.Unix(int64(sec), 0)
	return nil
}

// audience is a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return errClaimType
		}
		*a = audience{s}
		return nil
	case len(b) > 0 && b[0] == '[':
		var l []string
		if err := json.Unmarshal(b, &l); err != nil {
			return errClaimType
		}
		*a = l
		return nil
	}
	return errClaimType
}

// rawClaims are the registered claims we read, with JSON types enforced.
type rawClaims struct {
	Iss      string      `json:"iss"`
	Sub      string      `json:"sub"`
	ClientID string      `json:"client_id"`
	Jti      string      `json:"jti"`
	Aud      audience    `json:"aud"`
	Exp      numericDate `json:"exp"`
	Nbf      numericDate `json:"nbf"`
	Iat      numericDate `json:"iat"`
	Scope    *string     `json:"scope"`
	Scp      *[]string   `json:"scp"`
}

// parsed is a token split and decoded, but not yet verified.
type parsed struct {
	header header
	claims Claims
	// rawPayload is kept to read the embedded map at a claim path.
	rawPayload []byte
}

// parseToken splits a compact JWS, decodes its header and payload strictly
// (base64url without padding, one JSON object, no duplicate member names,
// registered claims of the right JSON types) and refuses any crit header.
// It verifies nothing.
func parseToken(token string) (*parsed, *Failure) {
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, invalid(ReasonMalformed, errDots)
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 || h == "" || p == "" || sig == "" {
		return nil, invalid(ReasonMalformed, errDots)
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(h)
	if err != nil {
		return nil, invalid(ReasonMalformed, errBase64)
	}
	pb, err := base64.RawURLEncoding.Strict().DecodeString(p)
	if err != nil {
		return nil, invalid(ReasonMalformed, errBase64)
	}
	out := &parsed{rawPayload: pb}
	if f := decodeStrict(hb, &out.header); f != nil {
		return nil, f
	}
	if out.header.Crit != nil {
		return nil, invalid(ReasonCrit, errCritHeader)
	}
	var rc rawClaims
	if f := decodeStrict(pb, &rc); f != nil {
		return nil, f
	}
	rc.to(&out.claims)
	return out, nil
}

// to sets c from the decoded registered claims.
func (rc *rawClaims) to(c *Claims) {
	c.Issuer, c.Subject, c.ClientID, c.ID = rc.Iss, rc.Sub, rc.ClientID, rc.Jti
	c.Audience = rc.Aud
	if rc.Exp.set {
		c.Expiry = rc.Exp.t
	}
	if rc.Nbf.set {
		c.NotBefore = rc.Nbf.t
	}
	if rc.Iat.set {
		c.IssuedAt = rc.Iat.t
	}
	if rc.Scope != nil {
		c.HasScopeClaim = true
		c.Scopes = appendScopes(c.Scopes, strings.Fields(*rc.Scope))
	}
	if rc.Scp != nil {
		c.HasScopeClaim = true
		c.Scopes = appendScopes(c.Scopes, *rc.Scp)
	}
}

func appendScopes(dst, src []string) []string {
outer:
	for _, s := range src {
		if s == "" {
			continue
		}
		for _, d := range dst {
			if d == s {
				continue outer
			}
		}
		dst = append(dst, s)
	}
	return dst
}

// decodeStrict checks data with checkJSON, then unmarshals it into v.
func decodeStrict(data []byte, v any) *Failure {
	if err := checkJSON(data); err != nil {
		if errors.Is(err, errDuplicate) {
			return invalid(ReasonDuplicateMember, err)
		}
		return invalid(ReasonMalformed, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return invalid(ReasonClaimType, errClaimType)
	}
	return nil
}

// registeredClaims are the members that Claims decodes into its fields;
// they are never in Claims.Extra.
var registeredClaims = map[string]bool{
	"iss": true, "sub": true, "client_id": true, "jti": true, "aud": true,
	"exp": true, "nbf": true, "iat": true, "scope": true, "scp": true,
}

// introspectionMembers are the members of an RFC 7662 answer that describe
// the answer rather than the token (Hydra's token_use included).
var introspectionMembers = map[string]bool{"active": true, "token_type": true, "token_use": true}

// outerClaims reads an outer token's payload (or an introspection answer),
// already checked by checkJSON: the embedded map at path, as embedded
// does, and the other claims for Claims.Extra (see there). skip names
// further top-level members to leave out of Extra.
func outerClaims(payload []byte, path []string, skip map[string]bool) (map[string]string, map[string]json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil || top == nil {
		return nil, nil, errEmbedded
	}
	var extra map[string]json.RawMessage
	add := func(k string, v json.RawMessage) {
		if extra == nil {
			extra = make(map[string]json.RawMessage, len(top))
		}
		extra[k] = v
	}
	for k, v := range top {
		if registeredClaims[k] || skip[k] || (len(path) > 0 && k == path[0]) {
			continue
		}
		add(k, v)
	}
	if len(path) == 0 {
		return nil, extra, nil
	}
	holder := top
	for _, seg := range path[:len(path)-1] {
		v, ok := holder[seg]
		if !ok || string(bytes.TrimSpace(v)) == "null" {
			return nil, extra, nil
		}
		var next map[string]json.RawMessage
		if err := json.Unmarshal(v, &next); err != nil {
			return nil, nil, errEmbedded
		}
		if next == nil {
			return nil, extra, nil
		}
		holder = next
	}
	last := path[len(path)-1]
	if len(path) > 1 {
		for k, v := range holder {
			if _, atTop := top[k]; atTop || k == last || k == "act" || registeredClaims[k] {
				continue
			}
			add(k, v)
		}
	}
	v, ok := holder[last]
	if !ok || string(bytes.TrimSpace(v)) == "null" {
		return nil, extra, nil
	}
	var m map[string]string
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, nil, errEmbedded
	}
	return m, extra, nil
}

// embedded reads the embedded map at path in the payload: absent or null
// anywhere along the path means no map (nil, nil); an object of strings is
// the map; anything else is an error.
func embedded(payload []byte, path []string) (map[string]string, error) {
	if len(path) == 0 {
		return nil, nil
	}
	cur := json.RawMessage(payload)
	for _, seg := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(cur, &obj); err != nil {
			return nil, errEmbedded
		}
		if obj == nil {
			return nil, nil
		}
		v, ok := obj[seg]
		if !ok || string(bytes.TrimSpace(v)) == "null" {
			return nil, nil
		}
		cur = v
	}
	var m map[string]string
	if err := json.Unmarshal(cur, &m); err != nil {
		return nil, errEmbedded
	}
	if m == nil {
		return nil, nil
	}
	return m, nil
}
