package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSidecarsNeedNoHookSecrets: a process needs only the secrets of the
// blocks it runs. The configuration folder holds the hook's secrets
// (api_key without a fallback, exchange clients), the hook runs with them,
// and every shipped sidecar starts and becomes ready with none of them in
// its environment; `check` warns about them and exits 0.
func TestSidecarsNeedNoHookSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	st := newStack(t, stackOptions{})
	st.edit(t, "hook.hcl", func(src string) string {
		return setAttr(t, src, "api_key", `env("EMBEDTOKEN_HOOK_KEY")`)
	})
	st.addFile(t, "exchange_clients.hcl", `exchange_client "orders-sidecar" {
  secret    = env("ORDERS_SIDECAR_SECRET")
  audiences = ["https://orders.internal"]
}
exchange_client "profile-sidecar" {
  secret_file = "secrets/profile-sidecar"
  audiences   = ["https://profile.internal"]
}
`)
	if err := os.MkdirAll(filepath.Join(st.dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(st.dir, "secrets", "profile-sidecar"), randomHex(t, 16)+"\n")
	st.setEnv("ORDERS_SIDECAR_SECRET=" + randomHex(t, 16))
	st.startHook(t)
	if err := os.Remove(filepath.Join(st.dir, "secrets", "profile-sidecar")); err != nil { // the hook has read it
		t.Fatal(err)
	}

	noSecrets := baseEnv()
	out, code := runCmd(t, needBinary(t), noSecrets, "check", "--config", st.dir)
	if code != 0 || strings.Count(out, "Secret not resolved") != 3 {
		t.Errorf("check without secrets: exit %d, want 0 and 3 warnings (api_key, two exchange clients):\n%s", code, out)
	}
	for _, f := range st.sidecarFiles(t) {
		api := strings.TrimSuffix(f, ".hcl")
		t.Run(api, func(t *testing.T) {
			a := freeAddrs(t, 3)
			file := filepath.Join(st.dir, "sidecars", f)
			st.edit(t, filepath.Join("sidecars", f), func(src string) string {
				src = setAttr(t, src, "listen", quote(a[0]))
				src = setAttr(t, src, "upstream", quote("http://"+a[1]))
				return setAttr(t, src, "admin_listen", quote(a[2]))
			})
			p := startProc(t, "sidecar-"+api, noSecrets, needBinary(t), "sidecar", "--config", st.dir, "--config", file)
			p.waitHTTP(t, "http://"+a[2]+"/readyz")
			p.stop(t)
		})
	}
}
