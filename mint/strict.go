package mint

import (
	"reflect"
	"strings"
	"sync"

	"github.com/embedtoken/embedtoken/internal/strictjson"
)

// checkMembers is strictjson.CheckFields(body, v) for a document that will
// be decoded into v, with a fast path: CheckFields walks the document once
// per struct level with encoding/json (a quarter of a Hydra hook request's
// handling), and it can only fail on a member name that folds to a field
// name of v's type without being it. A single scan of the member names
// against every field name of the type, at any depth, rules that out for
// ordinary documents; any doubt (a name with an escape or a non-ASCII
// byte, a name that folds to a field name spelled otherwise anywhere in
// the type) takes the full check.
func checkMembers(body []byte, v any) error {
	if err := strictjson.CheckObject(body); err != nil {
		return err
	}
	if !foldSetOf(reflect.TypeOf(v)).mayFold(body) {
		return nil
	}
	return strictjson.CheckFields(body, v)
}

// foldSet is every JSON member name that encoding/json may match to a
// field of a type, at any depth, by its ASCII lower case.
type foldSet struct {
	// spelling maps a lower-cased name to its one spelling in the type,
	// or to "" when the type spells it several ways.
	spelling map[string]string
	maxLen   int
	// always: a field name that is not plain ASCII (Unicode folding):
	// every document takes the full check.
	always bool
}

var foldSets sync.Map // reflect.Type -> *foldSet

func foldSetOf(t reflect.Type) *foldSet {
	if fs, ok := foldSets.Load(t); ok {
		return fs.(*foldSet)
	}
	fs := &foldSet{spelling: map[string]string{}}
	fs.collect(t, map[reflect.Type]bool{})
	foldSets.Store(t, fs)
	return fs
}

// collect adds the JSON names of t's fields (the tag's, else the Go
// name) and of the fields of their types, more than encoding/json would
// match (ignored and unexported fields, opaque types included): a name too
// many only sends more documents to the full check.
func (fs *foldSet) collect(t reflect.Type, seen map[reflect.Type]bool) {
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" {
			name = sf.Name
		}
		fs.add(name)
		fs.collect(sf.Type, seen)
	}
}

func (fs *foldSet) add(name string) {
	if name == "" {
		return
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			fs.always = true
		}
	}
	lower := strings.ToLower(name)
	if s, ok := fs.spelling[lower]; ok && s != name {
		fs.spelling[lower] = ""
	} else if !ok {
		fs.spelling[lower] = name
	}
	fs.maxLen = max(fs.maxLen, len(name))
}

// mayFold reports whether a member name of body, a valid JSON document
// (strictjson.CheckObject), could be a case variant of a field name.
func (fs *foldSet) mayFold(body []byte) bool {
	if fs.always {
		return true
	}
	var buf [64]byte
	for i := 0; i < len(body); i++ {
		if body[i] != '"' {
			continue
		}
		// A string: outside strings, a valid document has quotes only
		// where strings start.
		plain := true
		j := i + 1
		for ; j < len(body) && body[j] != '"'; j++ {
			switch c := body[j]; {
			case c == '\\':
				plain = false
				j++
			case c >= 0x80:
				plain = false
			}
		}
		name := body[i+1 : min(j, len(body))]
		i = j
		k := j + 1
		for k < len(body) && (body[k] == ' ' || body[k] == '\t' || body[k] == '\n' || body[k] == '\r') {
			k++
		}
		if k >= len(body) || body[k] != ':' {
			continue // a value, not a member name
		}
		if !plain {
			return true
		}
		if len(name) > fs.maxLen {
			continue // ASCII folding keeps lengths: no field is this long
		}
		lower := buf[:0]
		if len(name) > len(buf) {
			lower = make([]byte, 0, len(name))
		}
		for _, c := range name {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower = append(lower, c)
		}
		if s, ok := fs.spelling[string(lower)]; ok && s != string(name) {
			return true
		}
	}
	return false
}
