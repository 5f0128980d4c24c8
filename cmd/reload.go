package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
)

// reloadPollEvery is how often the long-running commands look for changed
// configuration and key files.
const reloadPollEvery = time.Second

// watchConfig calls reload on SIGHUP and whenever a file of the running
// configuration changes, until ctx is done. reload returns the catalog now
// running, or nil when the last good one stays (it logged why).
func watchConfig(ctx context.Context, log *zap.Logger, configs []string, cat *catalog.Catalog, reload func() *catalog.Catalog) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(reloadPollEvery)
	defer tick.Stop()
	stamps := fileStamps(watchList(cat, configs))
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("reloading", zap.String("reason", "sighup"))
		case <-tick.C:
			now := fileStamps(watchList(cat, configs))
			if now == stamps {
				continue
			}
			log.Info("reloading", zap.String("reason", "file_changed"))
		}
		if next := reload(); next != nil {
			cat = next
		}
		// A broken file is not retried until it changes again.
		stamps = fileStamps(watchList(cat, configs))
	}
}

// watchList is every path whose change triggers a reload: the --config
// paths (a folder, for files added to it), the files read, and the key and
// JWKS files named.
func watchList(cat *catalog.Catalog, configs []string) []string {
	out := append([]string{}, configs...)
	out = append(out, cat.Files...)
	return append(out, cat.KeyFiles...)
}

// fileStamps summarizes the modification times and sizes of paths and, for
// folders, of their *.hcl files; two equal summaries mean nothing changed.
func fileStamps(paths []string) string {
	var b strings.Builder
	stamp := func(name string, st os.FileInfo) {
		b.WriteString(name + "@" + st.ModTime().String() + "/" + strconv.FormatInt(st.Size(), 10) + ";")
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			b.WriteString(p + ":missing;")
			continue
		}
		if !st.IsDir() {
			stamp(p, st)
			continue
		}
		entries, _ := os.ReadDir(p)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".hcl") {
				if info, err := e.Info(); err == nil {
					stamp(p+"/"+e.Name(), info)
				}
			}
		}
	}
	return b.String()
}

// reloadCatalog loads the configuration again for a reload, logging each
// diagnostic (errors at error level) rather than printing it: a running
// daemon's output is its log.
func reloadCatalog(configs []string, keys catalog.KeyMode, runs catalog.Blocks, log *zap.Logger) (*catalog.Catalog, error) {
	cat, _, diags := catalog.LoadFiles(configs, loadOptions(keys, runs))
	for _, d := range diags {
		lvl := zap.WarnLevel
		if isError(d) {
			lvl = zap.ErrorLevel
		}
		if ce := log.Check(lvl, "configuration diagnostic"); ce != nil {
			ce.Write(zap.String("diagnostic", diagLine(d)))
		}
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("configuration has %d error(s)", countErrors(diags))
	}
	if cat == nil {
		return nil, errors.New("configuration did not load")
	}
	return cat, nil
}
