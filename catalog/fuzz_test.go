package catalog_test

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/embedtoken/embedtoken/catalog"
)

// FuzzLoad feeds arbitrary bytes to the loader as one HCL file. It must
// never panic, and must return either a catalog or error diagnostics.
// Seeds: the shipped example and every invalid case; plain `go test` runs
// only those, `go test -fuzz FuzzLoad ./catalog` explores.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/invalid/*.hcl")
	more, _ := filepath.Glob("../hcl/*.hcl")
	for _, p := range append(seeds, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		fsys := fstest.MapFS{"f.hcl": {Data: src}}
		cat, _, diags := catalog.Load(fsys, []string{"f.hcl"}, &catalog.Options{Keys: catalog.KeysCheck, LookupEnv: noEnv})
		if diags.HasErrors() != (cat == nil) {
			t.Fatalf("errors=%v but catalog=%v", diags.HasErrors(), cat != nil)
		}
		if cat != nil {
			_ = cat.Sizes()
		}
	})
}
