package catalog_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/embedtoken/embedtoken/catalog"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/invalid")

// diagLines renders diagnostics as cmd does off a terminal: the position
// text is the contract with users.
func diagLines(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		fmt.Fprintf(&b, "%s: %s; %s\n", sev, d.Summary, strings.Join(strings.Fields(d.Detail), " "))
	}
	return b.String()
}

func noEnv(string) (string, bool) { return "", false }

// TestInvalidGolden loads each testdata/invalid/<case>.hcl and compares
// every diagnostic with <case>.golden. Regenerate with -update.
func TestInvalidGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	fsys := os.DirFS("testdata/invalid")
	for _, c := range cases {
		name := filepath.Base(c)
		t.Run(strings.TrimSuffix(name, ".hcl"), func(t *testing.T) {
			cat, _, diags := catalog.Load(fsys, []string{name}, &catalog.Options{Keys: catalog.KeysCheck, LookupEnv: noEnv})
			if !diags.HasErrors() {
				t.Fatalf("got no error diagnostics, want some:\n%s", diagLines(diags))
			}
			if cat != nil {
				t.Errorf("got a catalog along with errors")
			}
			got := diagLines(diags)
			golden := strings.TrimSuffix(c, ".hcl") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./catalog -update)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestCombinedReportsAll is the acceptance case: a cycle, a
// duplicate audience and an unknown attribute are three diagnostics with
// their positions, reported together.
func TestCombinedReportsAll(t *testing.T) {
	_, _, diags := catalog.Load(os.DirFS("testdata/invalid"), []string{"combined.hcl"}, nil)
	want := []string{
		"combined.hcl:10:3: error: Unsupported argument",
		"combined.hcl:14:14: error: Duplicate API audience",
		"combined.hcl:15:15: error: Cycle in calls",
	}
	got := diagLines(diags)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if n := len(diags.Errs()); n != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", n, len(want), got)
	}
}
