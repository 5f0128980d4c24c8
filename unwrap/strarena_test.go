package unwrap

import (
	"strings"
	"testing"
)

// TestStringArena: strings decoded into the arena equal jsonString's, the
// ones it cannot hold fall back to a copy, and appending more never
// changes a string already returned.
func TestStringArena(t *testing.T) {
	in := []string{`"alice"`, `""`, `"a\"b"`, `"\u00e9t\u00e9"`, "\"\xff\xfe\"", `"été"`, `"x y  z"`, `"` + strings.Repeat("s", 40) + `"`}
	n := 0
	for _, q := range in[:len(in)-1] { // the last one does not fit
		n += len(q)
	}
	a := newStringArena(n)
	var got []string
	for _, q := range in {
		got = append(got, a.str([]byte(q)))
	}
	for i, q := range in {
		if want := jsonString([]byte(q)); got[i] != want {
			t.Errorf("%s: got %q, want %q", q, got[i], want)
		}
	}
	snapshot := strings.Clone(strings.Join(got, "|"))
	for range 10 {
		a.str([]byte(`"more"`))
	}
	if now := strings.Join(got, "|"); now != snapshot {
		t.Errorf("strings changed by later appends: %q, was %q", now, snapshot)
	}
	var none *stringArena
	if s := none.str([]byte(`"x"`)); s != "x" {
		t.Errorf("nil arena: %q", s)
	}
	if newStringArena(0) != nil {
		t.Error("an empty arena is allocated")
	}
}
