package catalog

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Blocks names the groups of blocks that hold secrets, so that a command
// needs only the secrets of the blocks it runs (Options.NotRun).
type Blocks uint8

const (
	// BlocksHook is the hook's api_key and the exchange_client secrets:
	// run by `hook`.
	BlocksHook Blocks = 1 << iota
	// BlocksSidecar is the sidecar's exchange secret: run by `sidecar`.
	BlocksSidecar
	// BlocksTrust is the trusts' introspection secrets: run by `sidecar`
	// and `hook` (the exchange verifies subject tokens).
	BlocksTrust

	// BlocksAll is every block that holds a secret.
	BlocksAll = BlocksHook | BlocksSidecar | BlocksTrust
)

// blockNames says which command runs a group, for diagnostics.
var blockNames = map[Blocks]string{
	BlocksHook:    "the hook",
	BlocksSidecar: "a sidecar",
	BlocksTrust:   "a sidecar or the hook",
}

// lazy reports whether the secrets of b are resolved lazily: the command
// does not run b, so an env() it cannot resolve or a secret_file it cannot
// read is a warning and the secret stays empty.
func (l *loader) lazy(b Blocks) bool {
	return l.opts != nil && l.opts.NotRun&b != 0
}

// secret evaluates a secret attribute of a block of group b (see
// secretValue); for a block this command does not run, a failing env() or
// file() is a warning instead of an error.
func (l *loader) secret(expr hcl.Expression, ctx *hcl.EvalContext, attr string, b Blocks, d *diagnostics) (Secret, bool) {
	if !l.lazy(b) {
		return secretValue(expr, ctx, attr, d)
	}
	var local diagnostics
	s, set := secretValue(expr, ctx, attr, &local)
	var unresolved hcl.Diagnostics
	for _, diag := range local.list {
		if diag.Severity == hcl.DiagError && fromSecretFunction(diag) {
			diag.Severity = hcl.DiagWarning
			diag.Summary = "Secret not resolved"
			diag.Detail += " " + lazyNote(attr, b)
			unresolved = append(unresolved, diag)
		}
	}
	if len(unresolved) == 0 {
		d.add(local.list)
		return s, set
	}
	// The failed call also left an unknown value, which decoding reports
	// again ("value must be known"): the warnings say it all.
	d.add(unresolved)
	return Secret{}, true
}

// lazyNote explains why an unresolved secret is only a warning.
func lazyNote(attr string, b Blocks) string {
	return "This command does not run the block that reads " + attr + ", so it is left unresolved here; " +
		"set it where " + blockNames[b] + " runs."
}

// fromSecretFunction reports whether diag comes from a call of env() or
// file().
func fromSecretFunction(diag *hcl.Diagnostic) bool {
	extra, ok := hcl.DiagnosticExtra[hclsyntax.FunctionCallDiagExtra](diag)
	if !ok {
		return false
	}
	name := extra.CalledFunctionName()
	return name == "env" || name == "file"
}

// MinAPIKeyBytes is the shortest hook api_key accepted: a guessable key
// lets anyone who reaches the private listener mint tokens.
const MinAPIKeyBytes = 16

// checkAPIKeyLength refuses a short api_key (a warning where the hook does
// not run). An empty one is refused when the hook starts.
func (l *loader) checkAPIKeyLength(key Secret, expr hcl.Expression, d *diagnostics) {
	n := len(key.Reveal())
	if n == 0 || n >= MinAPIKeyBytes {
		return
	}
	report := d.errorf
	if l.lazy(BlocksHook) {
		report = d.warnf
	}
	report(expr.Range(), "API key too short",
		"The hook's api_key is %d bytes long; use at least %d random bytes (for example the output of `openssl rand -hex 24`), or anyone who reaches the private listener can guess it and mint tokens.", n, MinAPIKeyBytes)
}
