package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The shipped example (hcl/) as the e2e tests rely on it.
const (
	minterIssuer = "https://minter.embedtoken.internal"
	devIssuer    = "https://dev-issuer.embedtoken.internal"
	minterClaim  = "embedded_tokens"
	hookHeader   = "X-Embedtoken-Key"
	// Addresses in the shipped files that the tests replace with free ports.
	shippedHookPublic = "http://127.0.0.1:4459"
	shippedHydra      = "http://127.0.0.1:4444"
)

// stack is a copy of the shipped hcl/ in a temporary folder, with fresh keys
// and every address moved to a free loopback port, and the embedtoken
// processes that run on it.
type stack struct {
	dir      string // the configuration folder: catalog.hcl, trust.hcl, hook.hcl, sidecars/
	hookKey  string // EMBEDTOKEN_HOOK_KEY
	hookAddr struct{ private, public, admin string }
	hook     *proc
	sidecars map[string]*sidecar
	client   *http.Client
	owner    *testing.T // the test whose end stops the processes, wherever they were started
	extraEnv []string   // more NAME=value for the processes (secrets that env() in HCL reads)
}

// sidecar is one running `embedtoken sidecar`.
type sidecar struct {
	api    string
	listen string // host:port
	admin  string // host:port
	p      *proc
}

// url returns the sidecar's URL for path.
func (s *sidecar) url(path string) string { return "http://" + s.listen + path }

// stackOptions adjusts the copied configuration.
type stackOptions struct {
	// HydraIssuer replaces the shipped Hydra address in trust.hcl; if empty
	// the trust "hydra" block is removed.
	HydraIssuer string
	// Leeway is every sidecar's leeway. If empty, "1s" (expiry tests wait
	// for exp + leeway).
	Leeway string
}

// newStack copies hcl/ (its *.hcl files only, never keys), makes the minter
// key (EdDSA minter-1) and the development issuer's key (RS256 dev-1) with
// `embedtoken keygen`, and rewrites addresses.
func newStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	needBinary(t)
	if opts.Leeway == "" {
		opts.Leeway = "1s"
	}
	s := &stack{dir: filepath.Join(t.TempDir(), "cfg"), sidecars: map[string]*sidecar{}, client: newClient(), owner: t}
	t.Cleanup(s.client.CloseIdleConnections)
	s.hookKey = randomHex(t, 24)
	for _, sub := range []string{"", "sidecars"} {
		if err := os.MkdirAll(filepath.Join(s.dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(repoRoot, "hcl", sub, "*.hcl"))
		if len(files) == 0 {
			t.Fatalf("no *.hcl in hcl/%s", sub)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(s.dir, sub, filepath.Base(f)), string(b))
		}
	}
	mustRun(t, nil, "keygen", "--alg", "EdDSA", "--kid", "minter-1", "--out", filepath.Join(s.dir, "keys", "minter"))
	mustRun(t, nil, "keygen", "--alg", "RS256", "--kid", "dev-1", "--out", filepath.Join(s.dir, "keys", "issuer"))

	a := freeAddrs(t, 3)
	s.hookAddr.private, s.hookAddr.public, s.hookAddr.admin = a[0], a[1], a[2]
	s.edit(t, "hook.hcl", func(src string) string {
		src = setAttr(t, src, "listen", quote(s.hookAddr.private))
		src = setAttr(t, src, "public_listen", quote(s.hookAddr.public))
		return setAttr(t, src, "admin_listen", quote(s.hookAddr.admin))
	})
	s.edit(t, "catalog.hcl", func(src string) string {
		return replaceAll(t, src, shippedHookPublic, "http://"+s.hookAddr.public)
	})
	s.edit(t, "trust.hcl", func(src string) string {
		if opts.HydraIssuer == "" {
			// No Hydra: a trust whose key set cannot be fetched keeps a
			// sidecar from being ready.
			return removeBlock(t, src, `trust "hydra"`)
		}
		src = replaceAll(t, src, shippedHydra, opts.HydraIssuer)
		// Hydra makes new keys on every start: let a sidecar refetch soon.
		return setAttr(t, src, "jwks_min_refetch", quote("1s"))
	})
	for _, f := range s.sidecarFiles(t) {
		s.edit(t, filepath.Join("sidecars", f), func(src string) string {
			return setAttr(t, src, "leeway", quote(opts.Leeway))
		})
	}
	return s
}

func (s *stack) sidecarFiles(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.dir, "sidecars", "*.hcl"))
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, filepath.Base(f))
	}
	return out
}

// edit rewrites one file of the configuration folder.
func (s *stack) edit(t *testing.T, name string, f func(string) string) {
	t.Helper()
	path := filepath.Join(s.dir, name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, f(string(b)))
}

// addFile adds a file to the configuration folder (read by processes
// started after it).
func (s *stack) addFile(t *testing.T, name, content string) {
	t.Helper()
	writeFile(t, filepath.Join(s.dir, name), content)
}

// env is the environment of the embedtoken processes.
func (s *stack) env() []string {
	return baseEnv(append([]string{"EMBEDTOKEN_HOOK_KEY=" + s.hookKey}, s.extraEnv...)...)
}

// setEnv adds NAME=value pairs to the environment of the processes started
// after it.
func (s *stack) setEnv(kv ...string) { s.extraEnv = append(s.extraEnv, kv...) }

// startHook runs `embedtoken hook --config DIR` and waits until it is ready
// and publishes the minter's JWKS.
func (s *stack) startHook(t *testing.T) {
	t.Helper()
	s.hook = startOwned(t, s.owner, "hook", s.env(), needBinary(t), "hook", "--config", s.dir)
	s.hook.waitHTTP(t, "http://"+s.hookAddr.admin+"/readyz")
	s.hook.waitHTTP(t, s.jwksURL())
}

// hookURL is the URL Hydra calls.
func (s *stack) hookURL() string { return "http://" + s.hookAddr.private + "/hooks/hydra" }

// jwksURL is the minter's public key set.
func (s *stack) jwksURL() string { return "http://" + s.hookAddr.public + "/.well-known/jwks.json" }

// startSidecar runs `embedtoken sidecar --config DIR --config
// DIR/sidecars/<api>.hcl` in front of upstream and waits until it is ready.
func (s *stack) startSidecar(t *testing.T, api, upstream string) *sidecar {
	t.Helper()
	a := freeAddrs(t, 2)
	sc := &sidecar{api: api, listen: a[0], admin: a[1]}
	file := filepath.Join("sidecars", api+".hcl")
	s.edit(t, file, func(src string) string {
		src = setAttr(t, src, "listen", quote(sc.listen))
		src = setAttr(t, src, "upstream", quote(upstream))
		return setAttr(t, src, "admin_listen", quote(sc.admin))
	})
	sc.p = startOwned(t, s.owner, "sidecar-"+api, s.env(), needBinary(t), "sidecar", "--config", s.dir, "--config", filepath.Join(s.dir, file))
	sc.p.waitHTTP(t, "http://"+sc.admin+"/readyz")
	s.sidecars[api] = sc
	return sc
}

// stopAll stops every process with SIGTERM and requires exit 0 from each.
func (s *stack) stopAll(t *testing.T) {
	t.Helper()
	for _, sc := range s.sidecars {
		if done, _ := sc.p.exited(); !done {
			sc.p.stop(t)
		}
	}
	if s.hook != nil {
		if done, _ := s.hook.exited(); !done {
			s.hook.stop(t)
		}
	}
}

// setAttr replaces the value of the one attribute line `name = ...` in src.
func setAttr(t *testing.T, src, name, value string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(\s*)` + regexp.QuoteMeta(name) + `(\s*)=.*$`)
	if n := len(re.FindAllStringIndex(src, -1)); n != 1 {
		t.Fatalf("attribute %s: %d lines, want exactly 1", name, n)
	}
	return re.ReplaceAllString(src, "${1}"+name+"${2}= "+strings.ReplaceAll(value, "$", "$$"))
}

// removeBlock removes the top-level block that starts with header (a line
// `header {`, ended by the first line `}`).
func removeBlock(t *testing.T, src, header string) string {
	t.Helper()
	re := regexp.MustCompile(`(?ms)^` + regexp.QuoteMeta(header) + ` \{.*?^\}\n?`)
	if n := len(re.FindAllStringIndex(src, -1)); n != 1 {
		t.Fatalf("block %s: %d found, want exactly 1", header, n)
	}
	return re.ReplaceAllString(src, "")
}

// replaceAll replaces old, which must occur in src.
func replaceAll(t *testing.T, src, old, new string) string {
	t.Helper()
	if !strings.Contains(src, old) {
		t.Fatalf("%q not found in the shipped configuration", old)
	}
	return strings.ReplaceAll(src, old, new)
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
