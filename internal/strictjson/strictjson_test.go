package strictjson

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCheckObject(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+1)
	deepArr := `{"a":` + strings.Repeat(`[`, MaxDepth) + strings.Repeat(`]`, MaxDepth) + `}`
	okDeep := strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat(`}`, MaxDepth)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty object", `{}`, nil},
		{"flat", `{"sub":"u","exp":1,"scp":["a","b"],"ext":{"x":null}}`, nil},
		{"same name in different objects", `{"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]}`, nil},
		{"at the depth bound", okDeep, nil},
		{"duplicate", `{"sub":"u","sub":"admin"}`, ErrDuplicate},
		{"escaped duplicate", `{"sub":"u","\u0073ub":"admin"}`, ErrDuplicate},
		{"nested duplicate", `{"ext":{"a":1,"a":2}}`, ErrDuplicate},
		{"duplicate in an array's object", `{"l":[{"a":1,"a":2}]}`, ErrDuplicate},
		{"too deep", deep, ErrTooDeep},
		{"too deep in arrays", deepArr, ErrTooDeep},
		{"trailing", `{} {}`, ErrTrailing},
		{"trailing garbage", `{}x`, ErrTrailing},
		{"array", `[]`, ErrNotObject},
		{"string", `"x"`, ErrNotObject},
		{"empty", ``, ErrNotObject},
		{"truncated", `{"a":`, ErrNotObject},
		{"bad literal", `{"a":tru}`, ErrNotObject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckObject([]byte(tc.in)); !errors.Is(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzCheckObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":2}]}`, `{"a":1,"a":2}`, `[`, `{"\u0061":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = CheckObject(b)
	})
}

// FuzzAgainstReference checks the scanner against the decoder-based
// reference: the same verdict for every input (both nil, or the same error).
func FuzzAgainstReference(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":2}]}`, `{"a":1,"a":2}`, `{"\u0061":1,"a":2}`, `{"a":-0.5e+3,"b":"\n"}`, "{\"\xff\":1,\"\xfe\":2}", `{"a":01}`, `{"a":1.}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, want := CheckObject(b), refCheckObject(b)
		if got != want {
			t.Fatalf("CheckObject(%q) = %v, reference %v", b, got, want)
		}
	})
}

func BenchmarkCheckObject(b *testing.B) {
	doc := []byte(`{"iss":"https://minter.embedtoken.internal","aud":"https://orders.internal","sub":"alice","client_id":"demo-app","exp":1795966235,"iat":1795962635,"jti":"zycqYYfaKB7pdOd91gLIoA","scope":"orders:read orders:write","email":"alice@example.com","tenant":"acme","embedded_tokens":{"billing":"eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2ln","inventory":"eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2ln"}}`)
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = CheckObject(doc)
		}
	})
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = refCheckObject(doc)
		}
	})
}

// TestManyMembers: past maxLinear members, names go into a map; duplicates
// are still found (as decoded), and a hostile object of many escaped names
// costs linear time.
func TestManyMembers(t *testing.T) {
	obj := func(names ...string) []byte {
		var b strings.Builder
		b.WriteString("{")
		for i, n := range names {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "%s:%d", n, i)
		}
		b.WriteString("}")
		return []byte(b.String())
	}
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf(`"n%d"`, i))
	}
	if err := CheckObject(obj(names...)); err != nil {
		t.Fatal(err)
	}
	for _, dup := range []string{`"n3"`, `"\u006e3"`, `"n30"`, `"\u006e\u0033\u0030"`} {
		if err := CheckObject(obj(append(names, dup)...)); err != ErrDuplicate {
			t.Errorf("%s after 40: %v", dup, err)
		}
		if err := CheckObject(obj(append(append(names[:20:20], dup), names[20:]...)...)); err != ErrDuplicate {
			t.Errorf("%s at 21: %v", dup, err)
		}
	}
	if err := CheckObject(obj(append(names, "\"\xff\"", "\"\\ufffd\"")...)); err != ErrDuplicate {
		t.Errorf("invalid UTF-8 past the map: %v", err)
	}
}

// BenchmarkManyEscapedNames measures the hostile case the map is for: an
// object of 1500 escaped member names (quadratic before: ~200 ms).
func BenchmarkManyEscapedNames(b *testing.B) {
	var buf strings.Builder
	buf.WriteString("{")
	for i := range 1500 {
		if i > 0 {
			buf.WriteString(",")
		}
		fmt.Fprintf(&buf, `"\u0061%d":%d`, i, i)
	}
	buf.WriteString("}")
	doc := []byte(buf.String())
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckObject(doc); err != nil {
			b.Fatal(err)
		}
	}
}
