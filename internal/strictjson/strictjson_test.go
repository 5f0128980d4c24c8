package strictjson

import (
	"errors"
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
