package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// sidecarB returns how to start the second sidecar of a paired A/B run
// (-embedtoken-b, -env-b): the same configuration as the first, another
// binary or extra environment (GOGC=50, say). Nil when neither is given.
func (c *config) sidecarB(logs, dir string) func() (*proc, error) {
	if c.bBin == "" && c.bEnv == "" {
		return nil
	}
	bin := c.bBin
	if bin == "" {
		bin = c.embedtoken
	}
	env := envList(c.bEnv)
	return func() (*proc, error) {
		return start(logs, "sidecar-b", c.serverCPU, baseEnv(env...), bin, "sidecar", "--config", dir, "--config", filepath.Join(dir, "sidecars", "orders.hcl"))
	}
}

// envList splits KEY=VALUE[,KEY=VALUE].
func envList(s string) []string {
	var env []string
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			env = append(env, kv)
		}
	}
	return env
}

// checkEnvList reports an -env-b entry that is not KEY=VALUE.
func checkEnvList(s string) error {
	for _, kv := range envList(s) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("-env-b %q: want KEY=VALUE[,KEY=VALUE]", kv)
		}
	}
	return nil
}
