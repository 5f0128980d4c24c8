// Package strictjson checks JSON documents that embedtoken decodes from
// untrusted sources (token headers and claims, hook bodies, introspection
// answers) for what encoding/json lets through: duplicate member names at
// any depth (RFC 8725 3.1: `{"sub":"u","sub":"admin"}` must not mean
// whatever the last one says), nesting deeper than a bound, and trailing
// data. It is shared by mint and unwrap, which must not import each other.
//
// CheckObject is a single pass over the bytes that allocates nothing for
// documents whose objects have at most 16 members and whose member names are
// plain ASCII without escapes: it sits on the sidecar's hot path.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
)

// MaxDepth bounds the nesting of objects and arrays.
const MaxDepth = 32

// Errors of CheckObject. Their text names no input value.
var (
	ErrNotObject = errors.New("not a single JSON object")
	ErrDuplicate = errors.New("duplicate JSON member name")
	ErrTooDeep   = errors.New("JSON nested too deeply")
	ErrTrailing  = errors.New("trailing data after the JSON object")
)

// CheckObject reports an error when data is not exactly one well-formed
// JSON object (RFC 8259), holds a duplicate member name in any object at
// any depth (names are compared as encoding/json decodes them, so
// "\u0073ub" is "sub"), nests deeper than MaxDepth, or has trailing data.
func CheckObject(data []byte) error {
	s := scanner{b: data}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return ErrNotObject
	}
	if err := s.object(1); err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return ErrTrailing
	}
	return nil
}

type scanner struct {
	b []byte
	i int
	// names holds the decoded member names that need decoding, by the
	// offset of their first byte: each is decoded once. Made on first use.
	names map[int]string
}

// maxLinear is the number of members of an object compared pairwise; past
// it, the names go into a map, so that a hostile object of many members
// costs linear time, not quadratic (this check runs before any signature).
const maxLinear = 16

// key is a member name: its raw bytes between the quotes, and whether it
// must be decoded before comparing (escapes, or bytes that encoding/json
// might replace).
type key struct {
	start, end int
	decode     bool
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) object(depth int) error {
	if depth > MaxDepth {
		return ErrTooDeep
	}
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	var small [maxLinear]key
	keys := small[:0]
	var seen map[string]struct{}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return ErrNotObject
		}
		k, err := s.str()
		if err != nil {
			return err
		}
		if seen == nil && len(keys) == maxLinear {
			seen = make(map[string]struct{}, 4*maxLinear)
			for _, o := range keys {
				seen[s.text(o)] = struct{}{}
			}
		}
		if seen == nil {
			for _, o := range keys {
				if s.same(o, k) {
					return ErrDuplicate
				}
			}
			keys = append(keys, k)
		} else {
			n := s.text(k)
			if _, dup := seen[n]; dup {
				return ErrDuplicate
			}
			seen[n] = struct{}{}
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return ErrNotObject
		}
		s.i++
		s.ws()
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return ErrNotObject
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return nil
		default:
			return ErrNotObject
		}
	}
}

// same reports whether two member names are equal once decoded.
func (s *scanner) same(a, b key) bool {
	if !a.decode && !b.decode {
		return bytes.Equal(s.b[a.start:a.end], s.b[b.start:b.end])
	}
	return s.text(a) == s.text(b)
}

// text is a member name as decoded (a plain name is its bytes); a name that
// needs decoding is decoded once.
func (s *scanner) text(k key) string {
	if !k.decode {
		return string(s.b[k.start:k.end])
	}
	if n, ok := s.names[k.start]; ok {
		return n
	}
	if s.names == nil {
		s.names = make(map[int]string)
	}
	n := decodeName(s.b[k.start-1 : k.end+1])
	s.names[k.start] = n
	return n
}

// decodeName decodes a quoted JSON string as encoding/json does (invalid
// UTF-8 becomes U+FFFD). The string was already validated.
func decodeName(quoted []byte) string {
	var v string
	_ = json.Unmarshal(quoted, &v)
	return v
}

func (s *scanner) value(depth int) error {
	if s.i >= len(s.b) {
		return ErrNotObject
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return ErrNotObject
}

func (s *scanner) array(depth int) error {
	if depth > MaxDepth {
		return ErrTooDeep
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return ErrNotObject
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			return nil
		default:
			return ErrNotObject
		}
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return ErrNotObject
	}
	s.i += len(lit)
	return nil
}

// str scans a string starting at its opening quote.
func (s *scanner) str() (key, error) {
	s.i++ // '"'
	k := key{start: s.i}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			k.end = s.i
			s.i++
			return k, nil
		case c < 0x20:
			return k, ErrNotObject
		case c == '\\':
			k.decode = true
			s.i++
			if s.i >= len(s.b) {
				return k, ErrNotObject
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if len(s.b)-s.i < 5 || !hex4(s.b[s.i+1:s.i+5]) {
					return k, ErrNotObject
				}
				s.i += 5
			default:
				return k, ErrNotObject
			}
		default:
			if c >= 0x80 {
				k.decode = true
			}
			s.i++
		}
	}
	return k, ErrNotObject
}

func hex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return ErrNotObject
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return ErrNotObject
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return ErrNotObject
		}
	}
	return nil
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
