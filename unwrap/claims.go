package unwrap

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
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
	errClaimType  = errors.New("claim of the wrong JSON type")
	errEmbedded   = errors.New("embedded map of the wrong JSON type")
	errBadNumber  = errors.New("bad NumericDate")
	errCritHeader = errors.New("crit header present")
)

// b64url decodes base64url without padding and refuses stray bits, so that a
// token has one encoding only.
var b64url = base64.RawURLEncoding.Strict()

// bytesOf views s as bytes without copying; the bytes must not be written.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// decodeClaims reads the registered claims of a payload (or introspection
// answer) that passed checkStrict into c, and appends its other top-level
// members to others. ok is false when a registered claim has the wrong
// JSON type (null counts as absent): strings for iss, sub, client_id, jti
// and scope; a string or an array of strings for aud; an array of strings
// for scp; a NumericDate for exp, nbf and iat.
func decodeClaims(data []byte, c *Claims, others []rawMember) (ok bool, _ []rawMember) {
	it := objectIter{b: data, i: skipSpace(data, 0) + 1} // JSON may start with whitespace
	bad := false
	// The raw values of the string claims, nil when absent or null
	// (checkStrict refused duplicates): decoded at the end, into one arena.
	var iss, sub, clientID, jti, aud, audList, scope, scp []byte
	for m, more := it.next(); more; m, more = it.next() {
		switch m.name() {
		case "iss":
			bad = !stringRaw(m.value, &iss) || bad
		case "sub":
			bad = !stringRaw(m.value, &sub) || bad
		case "client_id":
			bad = !stringRaw(m.value, &clientID) || bad
		case "jti":
			bad = !stringRaw(m.value, &jti) || bad
		case "aud":
			switch m.value[0] {
			case '"':
				aud = m.value
			case '[':
				audList = m.value
			case 'n':
			default:
				bad = true
			}
		case "exp":
			bad = !dateInto(m.value, &c.Expiry) || bad
		case "nbf":
			bad = !dateInto(m.value, &c.NotBefore) || bad
		case "iat":
			bad = !dateInto(m.value, &c.IssuedAt) || bad
		case "scope":
			bad = !stringRaw(m.value, &scope) || bad
		case "scp":
			switch m.value[0] {
			case '[':
				scp = m.value
			case 'n':
			default:
				bad = true
			}
		default:
			others = append(others, m)
		}
	}
	if bad {
		return false, others
	}
	a := newStringArena(len(iss) + len(sub) + len(clientID) + len(jti) + len(aud) + len(audList) + len(scope) + len(scp))
	for _, f := range [...]struct {
		raw []byte
		dst *string
	}{{iss, &c.Issuer}, {sub, &c.Subject}, {clientID, &c.ClientID}, {jti, &c.ID}} {
		if f.raw != nil {
			*f.dst = a.str(f.raw)
		}
	}
	switch {
	case aud != nil:
		c.Audience = []string{a.str(aud)}
	case audList != nil:
		var good bool
		if c.Audience, good = stringArray(audList, a); !good {
			return false, others
		}
	}
	var scopeText string
	var scpList []string
	n := 0
	if scope != nil {
		c.HasScopeClaim = true
		scopeText = a.str(scope)
		for range strings.FieldsSeq(scopeText) {
			n++
		}
	}
	if scp != nil {
		var good bool
		if scpList, good = stringArray(scp, a); !good {
			return false, others
		}
		c.HasScopeClaim = true
		n += len(scpList)
	}
	if n > 0 {
		c.Scopes = make([]string, 0, n)
	}
	var set scopeSet
	for s := range strings.FieldsSeq(scopeText) {
		c.Scopes = set.add(c.Scopes, s)
	}
	for _, s := range scpList {
		c.Scopes = set.add(c.Scopes, s)
	}
	return true, others
}

// stringRaw sets *dst to a JSON string value as it is (quotes included);
// null leaves it alone; any other value is the wrong type.
func stringRaw(v []byte, dst *[]byte) bool {
	switch v[0] {
	case '"':
		*dst = v
		return true
	case 'n':
		return true
	}
	return false
}

// maxScopesLinear is how many scopes are deduplicated pairwise; past it, a
// set: the claims are read before the signature is checked, so a hostile
// token's thousands of scopes must not cost quadratic time.
const maxScopesLinear = 16

// scopeSet deduplicates the scopes appended to one list.
type scopeSet struct{ seen map[string]struct{} }

// add appends s to dst unless it is empty or already there.
func (set *scopeSet) add(dst []string, s string) []string {
	if s == "" {
		return dst
	}
	if set.seen == nil {
		if slices.Contains(dst, s) {
			return dst
		}
		if len(dst) < maxScopesLinear {
			return append(dst, s)
		}
		set.seen = make(map[string]struct{}, 4*maxScopesLinear)
		for _, x := range dst {
			set.seen[x] = struct{}{}
		}
	} else if _, dup := set.seen[s]; dup {
		return dst
	}
	set.seen[s] = struct{}{}
	return append(dst, s)
}

// stringInto sets *dst from a JSON string; null leaves it alone; any other
// value is the wrong type.
func stringInto(v []byte, dst *string) bool {
	switch v[0] {
	case '"':
		*dst = jsonString(v)
		return true
	case 'n':
		return true
	}
	return false
}

// dateInto sets *dst from a NumericDate: a JSON number of seconds since the
// epoch, floored, from 0 to 2^40; null leaves it alone; a string or any
// other type is refused.
func dateInto(v []byte, dst *time.Time) bool {
	if v[0] == 'n' {
		return true
	}
	if !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
		return false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return false
	}
	*dst = time.Unix(int64(math.Floor(f)), 0)
	return true
}

// stringArray decodes a JSON array of strings (null elements are ""),
// into a when not nil.
func stringArray(v []byte, a *stringArena) ([]string, bool) {
	it := arrayIter{b: v, i: 1}
	out := []string{}
	for e, more := it.next(); more; e, more = it.next() {
		switch e[0] {
		case '"':
			out = append(out, a.str(e))
		case 'n':
			out = append(out, "")
		default:
			return nil, false
		}
	}
	return out, true
}

// jsonString decodes a JSON string (quotes included, already validated) as
// encoding/json does: invalid UTF-8 becomes U+FFFD. The result is a copy.
func jsonString(q []byte) string {
	raw := q[1 : len(q)-1]
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw)
	}
	var s string
	_ = json.Unmarshal(q, &s)
	return s
}

// rawMember is one member of a JSON object: its name and value as they
// appear in the document (the name with its quotes).
type rawMember struct {
	quoted []byte
	value  []byte
}

// name is the member's decoded name. For a plain name (ASCII, no escapes)
// it aliases the document: compare it, never keep it.
func (m rawMember) name() string {
	raw := m.quoted[1 : len(m.quoted)-1]
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			return jsonString(m.quoted)
		}
	}
	return unsafe.String(unsafe.SliceData(raw), len(raw))
}

// objectIter walks the members of a JSON object that passed checkStrict
// (or is part of one); i starts just past the opening brace. It allocates
// nothing.
type objectIter struct {
	b []byte
	i int
}

func (it *objectIter) next() (rawMember, bool) {
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		it.i = len(b)
		return rawMember{}, false
	}
	end := skipString(b, i)
	m := rawMember{quoted: b[i:end]}
	i = skipSpace(b, end)
	i = skipSpace(b, i+1) // ':'
	end = skipValue(b, i)
	m.value = b[i:end]
	it.i = end
	return m, true
}

// arrayIter walks the elements of a JSON array that passed checkStrict; i
// starts just past the opening bracket.
type arrayIter struct {
	b []byte
	i int
}

func (it *arrayIter) next() ([]byte, bool) {
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] == ']' {
		it.i = len(b)
		return nil, false
	}
	end := skipValue(b, i)
	it.i = end
	return b[i:end], true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i].
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		i += j
		k := i - 1
		for b[k] == '\\' {
			k--
		}
		if (i-1-k)%2 == 0 {
			return i + 1
		}
		i++
	}
}

// skipValue returns the index just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

// isRegistered reports the members that Claims decodes into its fields;
// they are never in Claims.Extra.
func isRegistered(name string) bool {
	switch name {
	case "iss", "sub", "client_id", "jti", "aud", "exp", "nbf", "iat", "scope", "scp":
		return true
	}
	return false
}

// introspectionMembers are the members of an RFC 7662 answer that describe
// the answer rather than the token (Hydra's token_use included).
var introspectionMembers = map[string]bool{"active": true, "token_type": true, "token_use": true}

// member returns the value of the member called name in obj (an object's
// members), or nil.
func member(members []rawMember, name string) []byte {
	for _, m := range members {
		if m.name() == name {
			return m.value
		}
	}
	return nil
}

// objectMembers appends the members of the JSON object v to dst.
func objectMembers(v []byte, dst []rawMember) []rawMember {
	it := objectIter{b: v, i: 1}
	for m, more := it.next(); more; m, more = it.next() {
		dst = append(dst, m)
	}
	return dst
}

// embeddedMap finds the embedded map at path, given the payload's top-level
// members: the map object's bytes (nil when absent or null anywhere along
// the path), and the members of the object holding it when that is not the
// top level (they join Claims.Extra). An intermediate value that is not an
// object is an error.
func embeddedMap(top []rawMember, path []string) (obj []byte, holder []rawMember, err error) {
	if len(path) == 0 {
		return nil, nil, nil
	}
	members := top
	for i, seg := range path {
		v := member(members, seg)
		last := i == len(path)-1
		if v == nil || v[0] == 'n' {
			if !last {
				holder = nil // the map's holder is missing: nothing to add
			}
			return nil, holder, nil
		}
		if v[0] != '{' {
			return nil, nil, errEmbedded
		}
		if last {
			return v, holder, nil
		}
		holder = objectMembers(v, nil)
		members = holder
	}
	return nil, nil, nil
}

// innerToken returns the value of name in the embedded map obj (found is
// false when absent). Every value must be a string (or null, read as ""),
// else the map is of the wrong type. The token is a copy.
func innerToken(obj []byte, name string) (tok string, found bool, err error) {
	it := objectIter{b: obj, i: 1}
	var val []byte
	for m, more := it.next(); more; m, more = it.next() {
		if m.value[0] != '"' && m.value[0] != 'n' {
			return "", false, errEmbedded
		}
		if val == nil && m.name() == name {
			val = m.value
		}
	}
	if val == nil {
		return "", false, nil
	}
	if val[0] == 'n' {
		return "", true, nil
	}
	return jsonString(val), true, nil
}

// embeddedStrings decodes the whole embedded map obj (nil: no map).
func embeddedStrings(obj []byte) (map[string]string, error) {
	if obj == nil {
		return nil, nil
	}
	m := map[string]string{}
	it := objectIter{b: obj, i: 1}
	for e, more := it.next(); more; e, more = it.next() {
		switch e.value[0] {
		case '"':
			m[jsonString(e.quoted)] = jsonString(e.value)
		case 'n':
			m[jsonString(e.quoted)] = ""
		default:
			return nil, errEmbedded
		}
	}
	return m, nil
}

// outerClaims reads an outer token's payload (or an introspection answer)
// that passed checkStrict: the embedded map at path, as embedded does, and
// the other claims for Claims.Extra (see there). skip names further
// top-level members to leave out of Extra. It is for VerifyOuter and
// introspection; the sidecar's path reads only its own inner token
// (innerToken).
func outerClaims(payload []byte, path []string, skip map[string]bool) (map[string]string, map[string]json.RawMessage, error) {
	var c Claims
	_, top := decodeClaims(payload, &c, nil)
	return extraClaims(top, path, skip)
}

// extraClaims is outerClaims on the payload's non-registered top-level
// members.
func extraClaims(top []rawMember, path []string, skip map[string]bool) (map[string]string, map[string]json.RawMessage, error) {
	obj, holder, err := embeddedMap(top, path)
	if err != nil {
		return nil, nil, err
	}
	m, err := embeddedStrings(obj)
	if err != nil {
		return nil, nil, err
	}
	var extra map[string]json.RawMessage
	add := func(k string, v []byte) {
		if extra == nil {
			extra = make(map[string]json.RawMessage, len(top)+len(holder))
		}
		extra[k] = bytes.Clone(v)
	}
	atTop := make(map[string]bool, len(top))
	for _, mb := range top {
		k := jsonString(mb.quoted)
		atTop[k] = true
		if skip[k] || (len(path) > 0 && k == path[0]) {
			continue
		}
		add(k, mb.value)
	}
	if len(path) > 1 {
		last := path[len(path)-1]
		for _, mb := range holder {
			k := jsonString(mb.quoted)
			if atTop[k] || k == last || k == "act" || isRegistered(k) {
				continue
			}
			add(k, mb.value)
		}
	}
	return m, extra, nil
}

// embedded reads the embedded map at path in a payload that passed
// checkStrict: absent or null anywhere along the path means no map (nil,
// nil); an object of strings is the map; anything else is an error.
func embedded(payload []byte, path []string) (map[string]string, error) {
	var c Claims
	_, top := decodeClaims(payload, &c, nil)
	obj, _, err := embeddedMap(top, path)
	if err != nil {
		return nil, err
	}
	return embeddedStrings(obj)
}
