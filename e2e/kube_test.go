package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Environment variables of the Kubernetes e2e tests.
const (
	// envKube set to 1 runs the tests against a real kube-apiserver.
	envKube = "EMBEDTOKEN_E2E_KUBE"
	// envKubeAPIServer is kube-apiserver v1.37.2 (e2e/kube/build.sh),
	// envHelm is Helm v4.3.2 (e2e/helm/build.sh) and envEtcd is etcd
	// (Debian's etcd-server; default: etcd from PATH). Relative paths are
	// taken from the repository root.
	envKubeAPIServer = "EMBEDTOKEN_KUBE_APISERVER"
	envHelm          = "EMBEDTOKEN_HELM_BIN"
	envEtcd          = "EMBEDTOKEN_ETCD_BIN"
)

// kubeReadyTimeout bounds the API server's start (etcd, then its
// bootstrap: namespaces, priority levels, RBAC roles).
const kubeReadyTimeout = 3 * time.Minute

const kubeToken = "e2e-admin-token"

func kubeBin(t *testing.T, env, def string) string {
	t.Helper()
	bin := os.Getenv(env)
	if bin == "" {
		bin = def
	}
	if bin == "" {
		t.Fatalf("e2e: set %s", env)
	}
	if strings.Contains(bin, "/") && !filepath.IsAbs(bin) {
		bin = filepath.Join(repoRoot, bin)
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("e2e: %s: %v", env, err)
	}
	return p
}

// kube is a real API server on loopback, with etcd, a static admin token
// and AlwaysAllow authorization; no controller-manager or scheduler runs.
type kube struct {
	url    string
	client *http.Client
}

func startKube(t *testing.T) *kube {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped under -short")
	}
	if os.Getenv(envKube) != "1" {
		t.Skipf("e2e: set %s=1 (with %s and %s) to run the tests with a real kube-apiserver", envKube, envKubeAPIServer, envHelm)
	}
	apiserver := kubeBin(t, envKubeAPIServer, "")
	etcdBin := kubeBin(t, envEtcd, "etcd")
	dir := t.TempDir()
	a := freeAddrs(t, 3)
	etcd := startProc(t, "etcd", baseEnv(), etcdBin,
		"--name", "e2e", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://"+a[0], "--advertise-client-urls", "http://"+a[0],
		"--listen-peer-urls", "http://"+a[1], "--initial-advertise-peer-urls", "http://"+a[1],
		"--initial-cluster", "e2e=http://"+a[1])
	etcd.waitHTTP(t, "http://"+a[0]+"/health")

	// The service-account signing key, made here.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	writeFile(t, filepath.Join(dir, "sa.key"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	writeFile(t, filepath.Join(dir, "sa.pub"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	writeFile(t, filepath.Join(dir, "tokens.csv"), kubeToken+",e2e-admin,e2e-admin,system:masters\n")
	host, port, _ := net.SplitHostPort(a[2])
	certDir := filepath.Join(dir, "certs")
	api := startProc(t, "kube-apiserver", baseEnv(), apiserver,
		"--etcd-servers", "http://"+a[0],
		"--bind-address", host, "--advertise-address", host, "--secure-port", port,
		"--cert-dir", certDir,
		"--token-auth-file", filepath.Join(dir, "tokens.csv"),
		"--authorization-mode", "AlwaysAllow",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range", "10.96.0.0/24",
		"--endpoint-reconciler-type", "none", // it refuses a loopback advertise address otherwise
		"--enable-priority-and-fairness=false",
		"--profiling=false")
	k := &kube{url: "https://" + a[2]}
	deadline := time.Now().Add(kubeReadyTimeout)
	for {
		if done, err := api.exited(); done {
			t.Fatalf("kube-apiserver exited: %s\n%s", exitText(err), api.tail(30))
		}
		if k.client == nil {
			// The serving certificate it made for itself is the root the
			// test trusts: no verification is turned off.
			if pemBytes, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt")); err == nil {
				pool := x509.NewCertPool()
				pool.AppendCertsFromPEM(pemBytes)
				k.client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil,
					TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
			}
		}
		if k.client != nil {
			if code, _ := k.do(t, "GET", "/readyz", nil); code == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready within %s:\n%s", kubeReadyTimeout, api.tail(30))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Cleanup(func() { k.client.CloseIdleConnections() })
	return k
}

// do sends one request with the admin token; body is JSON.
func (k *kube) do(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, k.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+kubeToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// must sends a request that must answer 2xx.
func (k *kube) must(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	code, out := k.do(t, method, path, body)
	if code/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, code, out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return m
}

// namespace creates a namespace with labels and its default ServiceAccount
// (no controller-manager runs to make it).
func (k *kube) namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	k.must(t, "POST", "/api/v1/namespaces", map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": name, "labels": labels}})
	k.must(t, "POST", "/api/v1/namespaces/"+name+"/serviceaccounts", map[string]any{"apiVersion": "v1", "kind": "ServiceAccount",
		"metadata": map[string]any{"name": "default"}})
}

// resourcePath is the collection URL of an object's kind.
func resourcePath(t *testing.T, obj map[string]any, ns string) string {
	t.Helper()
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	plural := map[string]string{"NetworkPolicy": "networkpolicies", "PodDisruptionBudget": "poddisruptionbudgets"}[kind]
	if plural == "" {
		plural = strings.ToLower(kind) + "s"
	}
	prefix := "/apis/" + apiVersion
	if apiVersion == "v1" {
		prefix = "/api/v1"
	}
	if kind == "MutatingWebhookConfiguration" || kind == "Namespace" {
		return prefix + "/" + plural
	}
	if md, _ := obj["metadata"].(map[string]any); md != nil {
		if n, _ := md["namespace"].(string); n != "" {
			ns = n
		}
	}
	return prefix + "/namespaces/" + ns + "/" + plural
}

// yamlDocs decodes a multi-document YAML stream into JSON-shaped objects.
func yamlDocs(t *testing.T, in []byte) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(in))
	var out []map[string]any
	for {
		var v map[string]any
		err := dec.Decode(&v)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("yaml: %v\n%s", err, in)
		}
		if v != nil {
			out = append(out, v)
		}
	}
}

// dryRun creates every object with server-side dry run and strict field
// validation: the API server's own schema and validation judge them.
func (k *kube) dryRun(t *testing.T, docs []map[string]any, ns string) {
	t.Helper()
	for _, d := range docs {
		md, _ := d["metadata"].(map[string]any)
		path := resourcePath(t, d, ns) + "?dryRun=All&fieldValidation=Strict"
		code, out := k.do(t, "POST", path, d)
		if code != 201 && code != 200 {
			t.Errorf("dry run of %s %v: %d %s", d["kind"], md["name"], code, out)
		}
	}
}

// kindsOf lists the kinds of docs, sorted (Helm orders them for install).
func (k *kube) kindsOf(docs []map[string]any) string {
	var kinds []string
	for _, d := range docs {
		kinds = append(kinds, fmt.Sprint(d["kind"]))
	}
	sort.Strings(kinds)
	return strings.Join(kinds, " ")
}

// TestKube proves the chart, inject and the injector on a real API server.
func TestKube(t *testing.T) {
	k := startKube(t)
	needBinary(t)
	bin := filepath.Join(t.TempDir(), "embedtoken-kube")
	build := exec.Command("go", "build", "-o", bin, "./cmd/embedtoken-kube")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build embedtoken-kube: %v\n%s", err, out)
	}
	helm := kubeBin(t, envHelm, "")
	chart := filepath.Join(repoRoot, "deploy", "helm", "embedtoken")
	hcl := filepath.Join(chart, "hcl")
	k.namespace(t, "embedtoken", nil)
	k.namespace(t, "plain", nil)
	k.namespace(t, "apps", map[string]string{"embedtoken.dev/inject": "enabled"})

	ca, serverCert, serverKey := testCA(t)
	caB64 := base64.StdEncoding.EncodeToString(ca)

	t.Run("helm template dry run", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"default values", nil, "ConfigMap ConfigMap Deployment Deployment MutatingWebhookConfiguration NetworkPolicy PodDisruptionBudget PodDisruptionBudget Service Service Service"},
			{"typical values", []string{"--set", "injector.tls.caBundle=" + caB64, "--set", "catalog.namespaces={apps}",
				"--set", "hook.replicas=3", "--set", "image.repository=registry.example/embedtoken", "--set", "image.tag=1.0",
				"--set-file", "catalog.files.catalog\\.hcl=" + filepath.Join(hcl, "catalog.hcl"),
				"--set-file", "catalog.files.trust\\.hcl=" + filepath.Join(hcl, "trust.hcl"),
				"--set-file", "catalog.sidecars.orders\\.hcl=" + filepath.Join(hcl, "sidecars", "orders.hcl")},
				"ConfigMap ConfigMap ConfigMap Deployment Deployment MutatingWebhookConfiguration NetworkPolicy PodDisruptionBudget PodDisruptionBudget Service Service Service"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"template", "embedtoken", chart, "--namespace", "embedtoken"}, tc.args...)
				out, err := exec.Command(helm, args...).CombinedOutput()
				if err != nil {
					t.Fatalf("helm template: %v\n%s", err, out)
				}
				docs := yamlDocs(t, out)
				if got := k.kindsOf(docs); got != tc.want {
					t.Fatalf("kinds rendered: %s\nwant %s", got, tc.want)
				}
				k.dryRun(t, docs, "embedtoken")
			})
		}
	})

	t.Run("inject output dry run", func(t *testing.T) {
		for _, tc := range []struct{ file, api string }{
			{"nginx-deployment.in.yaml", "web"}, {"workloads.in.yaml", "orders"}, {"partial.in.yaml", "orders"},
		} {
			in := filepath.Join(repoRoot, "cmd", "kube", "testdata", "inject", tc.file)
			out, err := exec.Command(bin, "inject", "--config", hcl, "--api", tc.api, "--image", "embedtoken:1.0", "-f", in).Output()
			if err != nil {
				t.Fatalf("inject %s: %v", tc.file, err)
			}
			docs := yamlDocs(t, out)
			if !strings.Contains(string(out), "restartPolicy: Always") {
				t.Fatalf("%s: no sidecar injected:\n%s", tc.file, out)
			}
			k.dryRun(t, docs, "plain")
			cmd := exec.Command(bin, "inject", "--config", hcl, "--api", tc.api, "--image", "embedtoken:1.0", "-f", "-")
			cmd.Stdin = bytes.NewReader(out)
			again, err := cmd.Output()
			if err != nil || !bytes.Equal(again, out) {
				t.Errorf("%s: injecting twice differs from once (%v)", tc.file, err)
			}
		}
	})

	// The injector behind a real MutatingWebhookConfiguration.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tls.crt"), string(serverCert))
	writeFile(t, filepath.Join(dir, "tls.key"), string(serverKey))
	a := freeAddrs(t, 2)
	injector := startProc(t, "injector", baseEnv(), bin, "injector", "--config", hcl,
		"--listen", a[0], "--admin-listen", a[1], "--image", "embedtoken:e2e",
		"--tls-cert", filepath.Join(dir, "tls.crt"), "--tls-key", filepath.Join(dir, "tls.key"))
	injector.waitHTTP(t, "http://"+a[1]+"/readyz")
	k.must(t, "POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
		"metadata": map[string]any{"name": "embedtoken-e2e"},
		"webhooks": []any{map[string]any{
			"name": "inject.embedtoken.dev", "admissionReviewVersions": []any{"v1"}, "sideEffects": "None",
			"failurePolicy": "Fail", "reinvocationPolicy": "IfNeeded", "timeoutSeconds": 5,
			"namespaceSelector": map[string]any{"matchLabels": map[string]any{"embedtoken.dev/inject": "enabled"}},
			"rules":             []any{map[string]any{"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "operations": []any{"CREATE"}, "resources": []any{"pods"}}},
			"clientConfig":      map[string]any{"url": "https://" + a[0] + "/mutate", "caBundle": caB64},
		}},
	})
	pod := func(api string) map[string]any {
		md := map[string]any{"generateName": "orders-"}
		if api != "" {
			md["annotations"] = map[string]any{"embedtoken.dev/api": api}
		}
		return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": map[string]any{
			"containers": []any{map[string]any{"name": "orders", "image": "example/orders:1.0",
				"env": []any{map[string]any{"name": "LISTEN", "value": "127.0.0.1:8081"}}}}}}
	}
	// The API server picks the new configuration up within a second or so.
	var created map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for {
		created = k.must(t, "POST", "/api/v1/namespaces/apps/pods", pod("orders"))
		if hasSidecar(created) || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Run("annotated pod gets the sidecar", func(t *testing.T) {
		if !hasSidecar(created) {
			t.Fatalf("no sidecar: %v", created["spec"])
		}
		spec := created["spec"].(map[string]any)
		c := spec["initContainers"].([]any)[0].(map[string]any)
		if c["restartPolicy"] != "Always" || c["image"] != "embedtoken:e2e" {
			t.Fatalf("sidecar: %v", c)
		}
		if !strings.Contains(fmt.Sprint(spec["volumes"]), "embedtoken-config") {
			t.Fatalf("no config volume: %v", spec["volumes"])
		}
	})
	t.Run("unannotated pod unchanged", func(t *testing.T) {
		got := k.must(t, "POST", "/api/v1/namespaces/apps/pods", pod(""))
		if hasSidecar(got) {
			t.Fatal("unannotated pod got the sidecar")
		}
	})
	t.Run("unlabelled namespace not sent to the webhook", func(t *testing.T) {
		got := k.must(t, "POST", "/api/v1/namespaces/plain/pods", pod("orders"))
		if hasSidecar(got) {
			t.Fatal("pod of an unlabelled namespace got the sidecar")
		}
	})
	t.Run("unknown api refused", func(t *testing.T) {
		code, out := k.do(t, "POST", "/api/v1/namespaces/apps/pods", pod("nope"))
		if code/100 == 2 || !strings.Contains(string(out), `which the catalog does not declare`) {
			t.Fatalf("%d %s", code, out)
		}
	})
	t.Run("injector down: annotated pods refused", func(t *testing.T) {
		injector.stop(t)
		code, out := k.do(t, "POST", "/api/v1/namespaces/apps/pods", pod("orders"))
		if code/100 == 2 || !strings.Contains(string(out), "inject.embedtoken.dev") {
			t.Fatalf("created while the injector is down: %d %s", code, out)
		}
	})
}

func bigOne() *big.Int { return big.NewInt(time.Now().UnixNano()) }

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }

func hasSidecar(pod map[string]any) bool {
	spec, _ := pod["spec"].(map[string]any)
	init, _ := spec["initContainers"].([]any)
	for _, c := range init {
		if m, _ := c.(map[string]any); m["name"] == "embedtoken" {
			return true
		}
	}
	return false
}

// testCA makes a CA and a serving certificate for 127.0.0.1 signed by it:
// the CA PEM, the certificate PEM, the key PEM.
func testCA(t *testing.T) ([]byte, []byte, []byte) {
	t.Helper()
	caKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	caTpl := &x509.Certificate{SerialNumber: bigOne(), Subject: pkixName("e2e injector CA"),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tpl := &x509.Certificate{SerialNumber: bigOne(), Subject: pkixName("127.0.0.1"),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}
