package kube

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of testdata/inject")

// kubeHCL is the Kubernetes catalog the chart ships (sidecars/ beside it).
const kubeHCL = "../../deploy/helm/embedtoken/hcl"

// TestInjectGolden runs inject on each testdata/inject/NAME.in.yaml and
// compares its output and warnings with NAME.out.yaml and NAME.err.txt;
// injecting the output again must change nothing.
func TestInjectGolden(t *testing.T) {
	cases := []struct{ name, api string }{
		{"nginx-deployment", "web"}, // the Kubernetes documentation's Deployment
		{"workloads", "orders"},     // every kind with a pod template, and others
		{"partial", "orders"},       // already injected, and a pod with its own volumes
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := filepath.Join("testdata", "inject", tc.name)
			code, out, errs := run(t, "inject", "--config", kubeHCL, "--api", tc.api, "--image", "embedtoken:1.0", "-f", base+".in.yaml")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			golden(t, base+".out.yaml", out)
			golden(t, base+".err.txt", errs)

			again := filepath.Join(t.TempDir(), "again.yaml")
			if err := os.WriteFile(again, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out2, errs2 := run(t, "inject", "--config", kubeHCL, "--api", tc.api, "--image", "embedtoken:1.0", "-f", again)
			if code != 0 || out2 != out {
				t.Fatalf("injecting twice differs from once (exit %d, %s):\n%s", code, errs2, out2)
			}
			if errs2 != "" {
				t.Errorf("second injection warned: %s", errs2)
			}
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd -run TestInjectGolden -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestInjectErrors: every refusal exits non-zero with a message saying why.
func TestInjectErrors(t *testing.T) {
	other := writeFiles(t, map[string]string{"pod.yaml": `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
    - name: embedtoken
      image: someone/else:1
      restartPolicy: Always
  containers: [{name: app, image: app}]
`, "app.yaml": `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: embedtoken, image: app}]
`, "notk8s.yaml": "- a\n- b\n", "bad.yaml": "a: [\n", "nospec.yaml": "kind: Deployment\nmetadata: {name: d}\n"})
	loop := writeFiles(t, map[string]string{
		"catalog.hcl":         "minter {\n issuer = \"https://m.test\"\n jwks_url = \"https://m.test/jwks.json\"\n algorithms = [\"EdDSA\"]\n}\napi \"a\" {\n audience = \"https://a.test\"\n}\n",
		"sidecars/a.hcl":      "sidecar {\n api = \"a\"\n listen = \"0.0.0.0:8441\"\n upstream = \"http://127.0.0.1:8081\"\n}\n",
		"sidecars/other.hcl":  "sidecar {\n api = \"nope\"\n listen = \"0.0.0.0:8441\"\n upstream = \"http://127.0.0.1:8081\"\n}\n",
		"sidecars/broken.hcl": "sidecar {\n",
	})
	pod := filepath.Join(other, "pod.yaml")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown api", []string{"--config", kubeHCL, "--api", "nope", "-f", pod}, 2, `api "nope" is not declared in the catalog`},
		{"no api", []string{"--config", kubeHCL, "-f", pod}, 2, "--api is required"},
		{"no config", []string{"--api", "web", "-f", pod}, 2, "--config is required"},
		{"sidecar in config", []string{"--config", kubeHCL, "--config", kubeHCL + "/sidecars/web.hcl", "--api", "web", "-f", pod}, 2, "holds a sidecar block"},
		{"another embedtoken", []string{"--config", kubeHCL, "--api", "web", "-f", pod}, 1, "of another configuration"},
		{"embedtoken app container", []string{"--config", kubeHCL, "--api", "web", "-f", filepath.Join(other, "app.yaml")}, 1, `already has an "embedtoken" container`},
		{"not an object", []string{"--config", kubeHCL, "--api", "web", "-f", filepath.Join(other, "notk8s.yaml")}, 1, "not a Kubernetes object"},
		{"not yaml", []string{"--config", kubeHCL, "--api", "web", "-f", filepath.Join(other, "bad.yaml")}, 1, "not YAML"},
		{"no pod template", []string{"--config", kubeHCL, "--api", "web", "-f", filepath.Join(other, "nospec.yaml")}, 1, "Deployment has no spec.template.spec"},
		{"missing file", []string{"--config", kubeHCL, "--api", "web", "-f", filepath.Join(other, "absent.yaml")}, 2, "read "},
		{"loopback admin", []string{"--config", loop, "--api", "a", "-f", pod}, 2, `admin_listen "127.0.0.1:9901" is loopback`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(t, append([]string{"inject"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, want %d; stderr %q, want %q", code, tc.code, errs, tc.want)
			}
			if out != "" {
				t.Errorf("wrote output on error: %q", out)
			}
		})
	}
}
