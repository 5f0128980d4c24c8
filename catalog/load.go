package catalog

import (
	"io/fs"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Load reads the configuration at paths from fsys: each path is a file, or a
// folder whose *.hcl files (not its subfolders) are read in name order. It
// returns the validated catalog, the parser (so that callers can render
// source snippets) and every diagnostic, warnings included. The catalog is
// nil when diags has errors.
func Load(fsys fs.FS, paths []string, opts *Options) (*Catalog, *hclparse.Parser, hcl.Diagnostics) {
	panic("TODO")
}

// LoadFiles is Load over the operating system's files; paths may be
// absolute or relative to the working directory.
func LoadFiles(paths []string, opts *Options) (*Catalog, *hclparse.Parser, hcl.Diagnostics) {
	panic("TODO")
}
