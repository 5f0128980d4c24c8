// Package strictjson checks JSON documents that embedtoken decodes from
// untrusted sources (token headers and claims, hook bodies, introspection
// answers) for what encoding/json lets through: duplicate member names at
// any depth (RFC 8725 3.1: "{"sub":"u","sub":"admin"}" must not mean
// whatever the last one says), nesting deeper than a bound, and trailing
// data. It is shared by mint and unwrap, which must not import each other.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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
// JSON object, holds a duplicate member name in any object at any depth
// (names are compared after unescaping, so "\u0073ub" is "sub"), nests
// deeper than MaxDepth, or has trailing data.
func CheckObject(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return ErrNotObject
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return ErrNotObject
	}
	if err := object(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailing
	}
	return nil
}

func object(dec *json.Decoder, depth int) error {
	if depth > MaxDepth {
		return ErrTooDeep
	}
	seen := make(map[string]struct{}, 8)
	for {
		tok, err := dec.Token()
		if err != nil {
			return ErrNotObject
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return nil
		}
		key, ok := tok.(string)
		if !ok {
			return ErrNotObject
		}
		if _, dup := seen[key]; dup {
			return ErrDuplicate
		}
		seen[key] = struct{}{}
		if err := value(dec, depth); err != nil {
			return err
		}
	}
}

func value(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return ErrNotObject
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return object(dec, depth+1)
	case '[':
		if depth+1 > MaxDepth {
			return ErrTooDeep
		}
		for dec.More() {
			if err := value(dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return ErrNotObject
		}
		return nil
	}
	return ErrNotObject
}
