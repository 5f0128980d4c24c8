package catalog

import "github.com/hashicorp/hcl/v2"

// PublicListenerNeeded reports why the hook needs its public listener, or ""
// when it does not: sidecars fetch the minter's keys from minter.jwks_url
// (served there unless another server publishes them), and the token
// exchange endpoint lives there when exchange_client blocks are declared.
// A minter whose keys are published as a file (jwks_file) and a hook that
// serves no exchange need no public listener.
func (c *Catalog) PublicListenerNeeded() string {
	switch {
	case c.Minter != nil && c.Minter.JWKSURL != "":
		return "minter.jwks_url is set: the public listener publishes the minter's keys"
	case len(c.ExchangeClients) > 0:
		return "exchange_client blocks are declared: the public listener serves the token exchange"
	}
	return ""
}

// checkHookPublic is an error at the hook block when it needs public_listen
// and lacks it. It is reported by `check` and the commands that sign (the
// hook refuses to start); a sidecar (KeysSkip) loads the same files without
// serving the hook, and is not held up by it.
func (l *loader) checkHookPublic(cat *Catalog, def *hcl.Range, d *diagnostics) {
	if cat.Hook == nil || def == nil || cat.Hook.PublicListen != "" || l.opts.keys() == KeysSkip {
		return
	}
	if why := cat.PublicListenerNeeded(); why != "" {
		d.errorf(*def, "Missing public_listen",
			"The hook needs public_listen (%s). Set public_listen, or publish the minter's keys as a file (minter.jwks_file) and declare no exchange_client.", why)
	}
}
