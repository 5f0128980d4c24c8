package unwrap

import (
	"bytes"
	"unicode/utf8"
	"unsafe"
)

// stringArena decodes the JSON strings of one token's registered claims
// into a single allocation, reserved up front: the strings then cost one
// allocation per token instead of one each. Bytes once appended are never
// written again and the buffer never grows (a string that does not fit is
// copied on its own), so the strings it returns are immutable. It holds
// only what was decoded into it: never the payload, never another API's
// token. A nil arena copies each string (jsonString).
type stringArena struct{ buf []byte }

// newStringArena reserves n bytes: at least the raw length of every
// string to be decoded.
func newStringArena(n int) *stringArena {
	if n <= 0 {
		return nil
	}
	return &stringArena{buf: make([]byte, 0, n)}
}

// str decodes the JSON string q (quotes included, already validated) as
// jsonString does. Escaped or invalid UTF-8 strings go to jsonString.
func (a *stringArena) str(q []byte) string {
	raw := q[1 : len(q)-1]
	if a == nil || len(raw) == 0 || len(raw) > cap(a.buf)-len(a.buf) ||
		bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
		return jsonString(q)
	}
	start := len(a.buf)
	a.buf = append(a.buf, raw...)
	return unsafe.String(&a.buf[start], len(raw))
}
