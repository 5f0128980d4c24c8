package unwrap

// The decoding the single-pass payload reader replaced: encoding/json's
// Decoder.Token for the duplicate-member check, then json.Unmarshal into
// structs and maps. FuzzPayloadAgainstReference checks that both agree.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// refMaxJSONDepth bounds nesting in headers and claims.
const refMaxJSONDepth = 32

// refCheckJSON reports an error when data is not exactly one JSON object, or
// holds duplicate member names at any depth (RFC 7519 4, RFC 8725 3.1 allow
// parsers to accept them; we never do).
func refCheckJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return errNotObject
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errNotObject
	}
	if err := refCheckObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errTrailing
	}
	return nil
}

func refCheckObject(dec *json.Decoder, depth int) error {
	if depth > refMaxJSONDepth {
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
		if err := refCheckValue(dec, depth); err != nil {
			return err
		}
	}
}

func refCheckValue(dec *json.Decoder, depth int) error {
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
		return refCheckObject(dec, depth+1)
	case '[':
		if depth+1 > refMaxJSONDepth {
			return errTooDeep
		}
		for dec.More() {
			if err := refCheckValue(dec, depth+1); err != nil {
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
type refHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  *string         `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// normTyp lower-cases typ and strips an "application/" prefix (RFC 7515
// 4.1.9). A missing typ is "".
func (h *refHeader) normTyp() string {
	if h.Typ == nil {
		return ""
	}
	t := strings.ToLower(*h.Typ)
	return strings.TrimPrefix(t, "application/")
}

// refNumericDate is a JSON number of seconds since the epoch; a string or any
// other type is refused.
type refNumericDate struct {
	set bool
	t   time.Time
}

func (n *refNumericDate) UnmarshalJSON(b []byte) error {
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

// refAudience is a string or an array of strings.
type refAudience []string

func (a *refAudience) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return errClaimType
		}
		*a = refAudience{s}
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

// refRawClaims are the registered claims we read, with JSON types enforced.
type refRawClaims struct {
	Iss      string         `json:"iss"`
	Sub      string         `json:"sub"`
	ClientID string         `json:"client_id"`
	Jti      string         `json:"jti"`
	Aud      refAudience    `json:"aud"`
	Exp      refNumericDate `json:"exp"`
	Nbf      refNumericDate `json:"nbf"`
	Iat      refNumericDate `json:"iat"`
	Scope    *string        `json:"scope"`
	Scp      *[]string      `json:"scp"`
}

// parsed is a token split and decoded, but not yet verified.
type refParsed struct {
	header refHeader
	claims Claims
	// rawPayload is kept to read the embedded map at a claim path.
	rawPayload []byte
}

// parseToken splits a compact JWS, decodes its header and payload strictly
// (base64url without padding, one JSON object, no duplicate member names,
// registered claims of the right JSON types) and refuses any crit header.
// It verifies nothing.
func refParseToken(token string) (*refParsed, *Failure) {
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
	out := &refParsed{rawPayload: pb}
	if f := refDecodeStrict(hb, &out.header); f != nil {
		return nil, f
	}
	if out.header.Crit != nil {
		return nil, invalid(ReasonCrit, errCritHeader)
	}
	var rc refRawClaims
	if f := refDecodeStrict(pb, &rc); f != nil {
		return nil, f
	}
	rc.to(&out.claims)
	return out, nil
}

// to sets c from the decoded registered claims.
func (rc *refRawClaims) to(c *Claims) {
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
		c.Scopes = refAppendScopes(c.Scopes, strings.Fields(*rc.Scope))
	}
	if rc.Scp != nil {
		c.HasScopeClaim = true
		c.Scopes = refAppendScopes(c.Scopes, *rc.Scp)
	}
}

func refAppendScopes(dst, src []string) []string {
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

// refDecodeStrict checks data with refCheckJSON, then unmarshals it into v.
func refDecodeStrict(data []byte, v any) *Failure {
	if err := refCheckJSON(data); err != nil {
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

// outerClaims reads an outer token's payload (or an introspection answer),
// already checked by refCheckJSON: the embedded map at path, as embedded
// does, and the other claims for Claims.Extra (see there). skip names
// further top-level members to leave out of Extra.
func refOuterClaims(payload []byte, path []string, skip map[string]bool) (map[string]string, map[string]json.RawMessage, error) {
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
func refEmbedded(payload []byte, path []string) (map[string]string, error) {
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

// Errors of the reference decoder.
var (
	errNotObject = errors.New("not a JSON object")
	errTrailing  = errors.New("trailing data after JSON")
	errDuplicate = errors.New("duplicate member name")
	errTooDeep   = errors.New("JSON nested too deeply")
)

// registeredClaims are the members that Claims decodes into its fields.
var registeredClaims = map[string]bool{
	"iss": true, "sub": true, "client_id": true, "jti": true, "aud": true,
	"exp": true, "nbf": true, "iat": true, "scope": true, "scp": true,
}

// foldVariant reports a top-level member whose name differs from one of
// names by case only: encoding/json matched struct fields
// case-insensitively, the payload reader matches names exactly (RFC 7519
// 4), so there the two are meant to differ.
func foldVariant(data []byte, names ...string) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return false
	}
	for k := range top {
		for _, n := range names {
			if k != n && strings.EqualFold(k, n) {
				return true
			}
		}
	}
	return false
}

var refPaths = [][]string{{"embedded_tokens"}, {"ext", "embedded_tokens"}, {"a", "b", "c"}, {"ext"}}

// FuzzPayloadAgainstReference decodes headers and payloads with the
// single-pass reader and with the reference (encoding/json), and wants the
// same outcome: the same failure reason or the same header, registered
// claims, embedded maps (and this API's inner token) and Extra.
func FuzzPayloadAgainstReference(f *testing.F) {
	f.Add(`{"alg":"RS256","kid":"k","typ":"at+jwt"}`, `{"iss":"i","sub":"s","aud":["a","b"],"exp":1e9,"scope":"a b a","scp":["c",null],"embedded_tokens":{"orders":"x.y.z","billing":null}}`)
	f.Add(`{"alg":"EdDSA","typ":null,"crit":null}`, `{"iss":"i","ext":{"tenant":"t","act":{},"embedded_tokens":{"orders":"a\u002eb"}},"act":1}`)
	f.Add(`{"alg":5}`, `{"aud":"x","exp":"1","nbf":-1,"iat":1.5}`)
	f.Add(`{"typ":"\u0061t+jwt","kid":"\ud800"}`, `{"embedded_tokens":{"orders":1},"a":{"b":{"c":{"orders":"t"}},"x":2}}`)
	f.Add(`{}`, `{"ext":null,"embedded_tokens":null,"scope":null,"scp":null,"aud":null,"exp":null}`)
	f.Add(`{"alg":"RS256"} `, `{"embedded_tokens":{"orders":"t"}, "embedded_tokens":{}}`)
	f.Fuzz(func(t *testing.T, hdrJSON, payloadJSON string) {
		if foldVariant([]byte(hdrJSON), "alg", "kid", "typ", "crit") ||
			foldVariant([]byte(payloadJSON), "iss", "sub", "client_id", "jti", "aud", "exp", "nbf", "iat", "scope", "scp") {
			t.Skip("names differing by case only")
		}
		tok := b64([]byte(hdrJSON)) + "." + b64([]byte(payloadJSON)) + ".c2ln"
		want, wf := refParseToken(tok)
		var got parsed
		gf := parseToken(tok, &got)
		if (wf == nil) != (gf == nil) || wf != nil && wf.Reason != gf.Reason {
			t.Fatalf("failure: got %v, want %v", gf, wf)
		}
		if wf != nil {
			return
		}
		wh := header{Alg: want.header.Alg, Kid: want.header.Kid, Crit: want.header.Crit != nil}
		if want.header.Typ != nil {
			wh.Typ, wh.HasTyp = *want.header.Typ, true
		}
		if got.header != wh {
			t.Fatalf("header: got %+v, want %+v", got.header, wh)
		}
		if w, g := emptyNil(want.claims), emptyNil(got.claims); !reflect.DeepEqual(w, g) {
			t.Fatalf("claims: got %+v, want %+v", g, w)
		}
		for _, path := range refPaths {
			wm, we := refEmbedded(want.rawPayload, path)
			gm, ge := embedded(got.payload, path)
			if (we == nil) != (ge == nil) || !maps.Equal(wm, gm) || (wm == nil) != (gm == nil) {
				t.Fatalf("embedded %v: got %v, %v; want %v, %v", path, gm, ge, wm, we)
			}
			tok, found, ie := innerAt(got.members, path, "orders")
			wtok, wfound := wm["orders"]
			if (ie == nil) != (we == nil) || tok != wtok || found != wfound {
				t.Fatalf("inner token at %v: got %q %v %v; want %q %v %v", path, tok, found, ie, wtok, wfound, we)
			}
			for _, skip := range []map[string]bool{nil, introspectionMembers} {
				wm, wx, we := refOuterClaims(want.rawPayload, path, skip)
				gm, gx, ge := outerClaims(got.payload, path, skip)
				if (we == nil) != (ge == nil) || !maps.Equal(wm, gm) || (wm == nil) != (gm == nil) {
					t.Fatalf("outerClaims %v: map got %v, %v; want %v, %v", path, gm, ge, wm, we)
				}
				if !maps.EqualFunc(wx, gx, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) || (wx == nil) != (gx == nil) {
					t.Fatalf("outerClaims %v: extra got %v, want %v", path, extraText(gx), extraText(wx))
				}
			}
		}
	})
}

// emptyNil makes empty slices nil, for comparing.
func emptyNil(c Claims) Claims {
	if len(c.Audience) == 0 {
		c.Audience = nil
	}
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
	return c
}
