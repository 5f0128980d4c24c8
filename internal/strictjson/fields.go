package strictjson

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// ErrCaseVariant is the error of CheckFields for a member whose name equals
// a field of the target type only when case is ignored.
var ErrCaseVariant = errors.New("JSON member name differs from a known field only in case")

// CheckFields is CheckObject for a document that will be decoded into v (a
// pointer, or any value of the target type) with encoding/json, which
// matches member names to struct fields ignoring case (Unicode simple
// folding: "SUBJECT", "Subject" and "ſubject" all fill the field
// "subject") and keeps the last. CheckObject refuses exact duplicates; this
// also refuses, at every depth the type describes (nested structs, their
// slices, arrays, maps and pointers), any member whose name equals a
// field's JSON name only when case is ignored, whether or not the exact
// name is there too. The error names the field by its path in the type,
// never an input value.
//
// Types with their own UnmarshalJSON or UnmarshalText (json.RawMessage,
// time.Time) are opaque: their members are their decoder's business.
func CheckFields(data []byte, v any) error {
	if err := CheckObject(data); err != nil {
		return err
	}
	f := fieldsOf(reflect.TypeOf(v))
	if f == nil {
		return nil
	}
	return f.check(data, "")
}

// fields is what encoding/json decodes of a type: for a struct, its
// members' JSON names and the fields of each member's type; for a slice,
// array or map, the fields of its elements (each).
type fields struct {
	names []string
	sub   []*fields
	each  *fields
}

var fieldsCache sync.Map // reflect.Type -> *fields (nil stored as (*fields)(nil))

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// fieldsOf returns the fields of t, or nil when nothing under t has names
// to check.
func fieldsOf(t reflect.Type) *fields {
	if t == nil {
		return nil
	}
	if f, ok := fieldsCache.Load(t); ok {
		return f.(*fields)
	}
	f := build(t, map[reflect.Type]*fields{})
	fieldsCache.Store(t, f)
	return f
}

// build returns the fields of t; building holds the structs being built, so
// that a recursive type refers to its own node.
func build(t reflect.Type, building map[reflect.Type]*fields) *fields {
	for t.Kind() == reflect.Pointer {
		if t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) {
			return nil
		}
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		if e := build(t.Elem(), building); e != nil {
			return &fields{each: e}
		}
		return nil
	case reflect.Struct:
		if f, ok := building[t]; ok {
			return f // a recursive type
		}
		f := &fields{}
		building[t] = f
		addStruct(f, t, building)
		if len(f.names) == 0 {
			return nil
		}
		return f
	}
	return nil
}

// addStruct adds t's JSON members to f, with the fields of embedded structs
// promoted as encoding/json does.
func addStruct(f *fields, t reflect.Type, building map[reflect.Type]*fields) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			et := sf.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				addStruct(f, et, building)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f.names = append(f.names, name)
		f.sub = append(f.sub, build(sf.Type, building))
	}
}

// check walks data (a value of f's type that passed CheckObject); path is
// where it is, for the error.
func (f *fields) check(data []byte, path string) error {
	if f.each != nil {
		var list []json.RawMessage
		if json.Unmarshal(data, &list) == nil {
			for _, e := range list {
				if err := f.each.check(e, path+"[]"); err != nil {
					return err
				}
			}
			return nil
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) == nil {
			for _, e := range m {
				if err := f.each.check(e, path+"{}"); err != nil {
					return err
				}
			}
		}
		return nil // another type: the decoder reports it
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(data, &members) != nil {
		return nil // not an object: the decoder reports it
	}
	for name, v := range members {
		for i, field := range f.names {
			if name == field {
				if f.sub[i] != nil {
					if err := f.sub[i].check(v, join(path, field)); err != nil {
						return err
					}
				}
				continue
			}
			if strings.EqualFold(name, field) {
				return fmt.Errorf("%w: %s", ErrCaseVariant, join(path, field))
			}
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
