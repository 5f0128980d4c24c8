package cmd

import (
	"fmt"
	"io"

	"github.com/embedtoken/embedtoken/catalog"
)

// loadCatalog loads the configuration at paths through the same code path for
// every command, prints its diagnostics to stderr, and returns a configError
// when any is an error.
func loadCatalog(paths []string, keys catalog.KeyMode, stderr io.Writer) (*catalog.Catalog, error) {
	if len(paths) == 0 {
		return nil, &usageError{msg: "--config is required", hint: "pass --config hcl/ (a file or a folder; repeatable)"}
	}
	cat, parser, diags := catalog.LoadFiles(paths, &catalog.Options{Keys: keys})
	writeDiagnostics(stderr, parser, diags)
	if diags.HasErrors() {
		return nil, &configError{msg: fmt.Sprintf("configuration has %d error(s)", countErrors(diags))}
	}
	return cat, nil
}

func countErrors(diags interface{ Errs() []error }) int { return len(diags.Errs()) }
