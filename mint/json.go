package mint

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
	"unicode/utf8"
)

// errInvalidUTF8 is a raw JSON claim value holding bytes that are not UTF-8.
var errInvalidUTF8 = errors.New("JSON value is not UTF-8")

// jsonString returns s as a JSON string, without HTML escaping (tokens are
// not HTML; escaping would only make them longer).
func jsonString(s string) string {
	if plainJSON(s) { // the common case: URLs, names, base64url
		return `"` + s + `"`
	}
	b, err := marshalCompact(s)
	if err != nil { // a string always marshals
		panic(err)
	}
	return string(b)
}

// marshalCompact is json.Marshal without HTML escaping and without the
// encoder's trailing newline.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// encodeValue returns v as compact JSON. A json.RawMessage (or []byte of
// JSON) must be valid JSON and is compacted as is.
func encodeValue(v any) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, err
		}
		// RFC 8259 8.1: JSON text is UTF-8. encoding/json lets invalid
		// bytes through Compact; a parser behind a sidecar may refuse them
		// or read them otherwise than Go (U+FFFD), so they are not signed.
		if !utf8.Valid(buf.Bytes()) {
			return nil, errInvalidUTF8
		}
		return buf.Bytes(), nil
	}
	return marshalCompact(v)
}

// mapJSON encodes an api -> token map with sorted keys. Compact JWS text
// needs no escaping; names go through jsonString.
func mapJSON(m map[string]string) []byte {
	return appendMapJSON(make([]byte, 0, mapJSONLen(m)), m)
}

// appendMapJSON appends mapJSON(m) to b.
func appendMapJSON(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// newJTI returns a random 128-bit identifier, base64url without padding.
func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Fingerprint returns the first 8 hex characters of the SHA-256 of s: how
// logs name a subject.
func Fingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// EmbeddedBytes returns the base64url bytes that `,"<claim>":<tokens>` adds to
// an outer token's payload.
func EmbeddedBytes(claim string, tokens map[string]string) int {
	n := len(`,`) + jsonStringLen(claim) + len(`:`) + mapJSONLen(tokens)
	return base64.RawURLEncoding.EncodedLen(n)
}

// mapJSONLen is len(mapJSON(m)), without building it.
func mapJSONLen(m map[string]string) int {
	n := 2 + len(m) // braces, a colon per member
	if len(m) > 1 {
		n += len(m) - 1 // commas
	}
	for k, v := range m {
		n += jsonStringLen(k) + jsonStringLen(v)
	}
	return n
}

// appendJSONString appends jsonString(s) to b, without building it when s
// needs no escaping (a token, a plain API name).
func appendJSONString(b []byte, s string) []byte {
	if plainJSON(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	return append(b, jsonString(s)...)
}

// jsonStringLen is len(jsonString(s)), without building it when s needs no
// escaping.
func jsonStringLen(s string) int {
	if plainJSON(s) {
		return len(s) + 2
	}
	return len(jsonString(s))
}

// plainJSON reports whether s needs no escaping in a JSON string.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// MapJSON returns the embedded map as compact JSON, keys sorted.
func (r Result) MapJSON() []byte { return mapJSON(r.Tokens) }
