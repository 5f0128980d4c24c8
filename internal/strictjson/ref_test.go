package strictjson

import (
	"bytes"
	"encoding/json"
	"io"
)

// refCheckObject is the straightforward encoding/json.Decoder.Token
// implementation the scanner replaced; the fuzz target checks that both
// always agree.
func refCheckObject(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return ErrNotObject
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return ErrNotObject
	}
	if err := refObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailing
	}
	return nil
}

func refObject(dec *json.Decoder, depth int) error {
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
		if err := refValue(dec, depth); err != nil {
			return err
		}
	}
}

func refValue(dec *json.Decoder, depth int) error {
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
		return refObject(dec, depth+1)
	case '[':
		if depth+1 > MaxDepth {
			return ErrTooDeep
		}
		for dec.More() {
			if err := refValue(dec, depth+1); err != nil {
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
