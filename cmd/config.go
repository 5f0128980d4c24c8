package cmd

import (
	"flag"
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
)

// The blocks whose secrets each daemon needs: a sidecar never needs the
// hook's (its api_key, the exchange clients' secrets) nor the hook a
// sidecar's exchange secret.
const (
	hookRuns    = catalog.BlocksHook | catalog.BlocksTrust
	sidecarRuns = catalog.BlocksSidecar | catalog.BlocksTrust
)

// loadOptions are the catalog options of a command that reads keys as keys
// says and runs the blocks runs: it needs only those blocks' secrets.
func loadOptions(keys catalog.KeyMode, runs catalog.Blocks) *catalog.Options {
	return &catalog.Options{Keys: keys, NotRun: catalog.BlocksAll &^ runs}
}

// loadCatalog loads the configuration at paths through the same code path for
// every command, prints its diagnostics to stderr, and returns a configError
// when any is an error.
func loadCatalog(paths []string, keys catalog.KeyMode, runs catalog.Blocks, stderr io.Writer) (*catalog.Catalog, error) {
	return loadCatalogDiags(paths, keys, runs, stderr, false)
}

// loadCatalogDiags is loadCatalog; with onlyErrors, warnings are not
// written (check reports them).
func loadCatalogDiags(paths []string, keys catalog.KeyMode, runs catalog.Blocks, stderr io.Writer, onlyErrors bool) (*catalog.Catalog, error) {
	if len(paths) == 0 {
		return nil, &usageError{msg: "--config is required", hint: "pass --config hcl/ (a file or a folder; repeatable)"}
	}
	cat, parser, diags := catalog.LoadFiles(paths, loadOptions(keys, runs))
	if onlyErrors {
		writeDiagnostics(stderr, parser, errorsOnly(diags))
	} else {
		writeDiagnostics(stderr, parser, diags)
	}
	if diags.HasErrors() {
		return nil, &configError{msg: fmt.Sprintf("configuration has %d error(s)", countErrors(diags))}
	}
	return cat, nil
}

func countErrors(diags interface{ Errs() []error }) int { return len(diags.Errs()) }

// startDaemon does what every long-running command does first: parse
// --config (repeatable) and --log-level, build the JSON logger, and load
// the configuration with keys. The caller syncs the logger when done.
// extra adds a command's own flags.
func startDaemon(name string, args []string, stderr io.Writer, keys catalog.KeyMode, runs catalog.Blocks, extra ...func(*flag.FlagSet)) ([]string, *zap.Logger, *catalog.Catalog, error) {
	synopsis := name + " --config PATH [--config PATH]... [--log-level info]"
	fs := newFlags(name, synopsis, stderr)
	var configs stringList
	fs.Var(&configs, "config", "configuration file or folder (repeatable)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	for _, add := range extra {
		add(fs)
	}
	// The usage line names the command's own flags too.
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" && f.Name != "log-level" {
			synopsis += " [--" + f.Name + "]"
		}
	})
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: embedtoken %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, 0); err != nil {
		return nil, nil, nil, err
	}
	profileMemory(false) // pprof.go; sidecar --pprof turns it back on
	log, err := newLogger(stderr, *level)
	if err != nil {
		return nil, nil, nil, err
	}
	cat, err := loadCatalog(configs, keys, runs, stderr)
	if err != nil {
		_ = log.Sync()
		return nil, nil, nil, err
	}
	return configs, log, cat, nil
}

// demoRuns is 0: the demo makes its own hook key, exchange clients and
// trusts, so it needs none of the configuration's secrets.
const demoRuns catalog.Blocks = 0
