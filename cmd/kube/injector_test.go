package kube

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testWebhook(t *testing.T) *webhook {
	t.Helper()
	wh, err := newWebhook([]string{kubeHCL}, "embedtoken:1.0", "embedtoken", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

func review(t *testing.T, h http.Handler, pod string) (int, *admissionResponse, string) {
	t.Helper()
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"apps","operation":"CREATE","object":` + pod + `}}`
	req := httptest.NewRequest("POST", "/mutate", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		return rec.Code, nil, rec.Body.String()
	}
	var out admissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("bad response %q: %v", rec.Body.String(), err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response.UID != "u-1" {
		t.Fatalf("response not an AdmissionReview for u-1: %s", rec.Body.String())
	}
	return rec.Code, out.Response, rec.Body.String()
}

func TestInjectorReview(t *testing.T) {
	wh := testWebhook(t)
	annotated := func(api string) string {
		return `{"metadata":{"name":"p","annotations":{"embedtoken.dev/api":` + api + `}},"spec":{"containers":[{"name":"app","image":"app","env":[{"name":"LISTEN","value":"127.0.0.1:8081"}]}]}}`
	}
	cases := []struct {
		name    string
		pod     string
		allowed bool
		patched bool
		msg     string
	}{
		{"annotated", annotated(`"orders"`), true, true, ""},
		{"unannotated", `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app"}]}}`, true, false, ""},
		{"unknown api", annotated(`"nope"`), false, false, `names api "nope", which the catalog does not declare (declared: billing, orders, web)`},
		{"annotation not a string", annotated(`7`), false, false, "must be a string"},
		{"no sidecar block", annotated(`"billing"`), true, true, ""},
		{"other embedtoken", `{"metadata":{"annotations":{"embedtoken.dev/api":"orders"}},"spec":{"initContainers":[{"name":"embedtoken","image":"x"}],"containers":[{"name":"app","image":"app"}]}}`, false, false, "another configuration"},
		{"not an object", `[1]`, false, false, "not a JSON object"},
		{"hostile api name is cut", annotated(`"` + strings.Repeat("x", 500) + `"`), false, false, strings.Repeat("x", 64) + "…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, raw := review(t, wh, tc.pod)
			if resp.Allowed != tc.allowed || (len(resp.Patch) > 0) != tc.patched {
				t.Fatalf("allowed %v patched %v: %s", resp.Allowed, len(resp.Patch) > 0, raw)
			}
			if tc.msg != "" && (resp.Status == nil || !strings.Contains(resp.Status.Message, tc.msg)) {
				t.Fatalf("message: %s", raw)
			}
			if strings.Contains(raw, strings.Repeat("x", 65)) {
				t.Fatalf("echoed a long hostile value: %s", raw)
			}
			if !tc.patched {
				return
			}
			if resp.PatchType != "JSONPatch" {
				t.Fatalf("patchType %q", resp.PatchType)
			}
			var ops []map[string]any
			if err := json.Unmarshal(resp.Patch, &ops); err != nil || len(ops) != 2 {
				t.Fatalf("patch %s: %v", resp.Patch, err)
			}
			if ops[0]["path"] != "/spec/initContainers" || ops[1]["path"] != "/spec/volumes" {
				t.Fatalf("patch paths: %s", resp.Patch)
			}
		})
	}
}

// TestInjectorPatchAppends: a pod with init containers and volumes gets the
// sidecar first and the volume appended; an injected pod is left alone.
func TestInjectorPatchAppends(t *testing.T) {
	wh := testWebhook(t)
	pod := `{"metadata":{"annotations":{"embedtoken.dev/api":"orders"}},"spec":{"initContainers":[{"name":"migrate","image":"m"}],"containers":[{"name":"app","image":"app"}],"volumes":[{"name":"data","emptyDir":{}}]}}`
	_, resp, raw := review(t, wh, pod)
	if !resp.Allowed || !strings.Contains(string(resp.Patch), `"path":"/spec/initContainers/0"`) || !strings.Contains(string(resp.Patch), `"path":"/spec/volumes/-"`) {
		t.Fatalf("%s / %s", raw, resp.Patch)
	}
	// The same pod with the patch applied by hand: unchanged.
	var p map[string]any
	_ = json.Unmarshal([]byte(pod), &p)
	spec := p["spec"].(map[string]any)
	pi := wh.apis["orders"]
	norm, _ := normalize(spec)
	spec = norm.(map[string]any)
	plan, err := pi.plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	pi.apply(spec, plan)
	p["spec"] = spec
	b, _ := json.Marshal(p)
	_, resp, raw = review(t, wh, string(b))
	if !resp.Allowed || len(resp.Patch) != 0 {
		t.Fatalf("second review changed the pod: %s", raw)
	}
}

func TestInjectorBadRequests(t *testing.T) {
	wh := testWebhook(t)
	cases := []struct {
		name, ctype, body string
		code              int
	}{
		{"wrong content type", "text/plain", `{}`, 415},
		{"not json", "application/json", `{`, 400},
		{"no request", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 400},
		{"v1beta1", "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`, 400},
		{"too large", "application/json", `{"x":"` + strings.Repeat("a", maxReviewBytes) + `"}`, 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/mutate", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ctype)
			rec := httptest.NewRecorder()
			wh.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body.String())
			}
		})
	}
	// Other kinds and operations pass without a patch.
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-2","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE","object":{}}}`
	req := httptest.NewRequest("POST", "/mutate", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), `"allowed":true`) || strings.Contains(rec.Body.String(), "patch") {
		t.Fatalf("%s", rec.Body.String())
	}
}

// TestCertReloader: a renewed certificate is served after its files change;
// a broken pair keeps the last good one.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, cert, key, "first")
	c := &certReloader{certFile: cert, keyFile: key}
	got, err := c.get()
	if err != nil || leafCN(t, got) != "first" {
		t.Fatalf("%v", err)
	}
	writeCert(t, cert, key, "second-with-a-longer-name")
	c.checked = time.Time{} // skip the once-a-second throttle
	if got, _ = c.get(); leafCN(t, got) != "second-with-a-longer-name" {
		t.Fatal("renewed certificate not served")
	}
	if err := os.WriteFile(cert, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.checked = time.Time{}
	if got, err = c.get(); err != nil || leafCN(t, got) != "second-with-a-longer-name" {
		t.Fatalf("broken pair replaced the good one: %v", err)
	}
	if _, err := (&certReloader{certFile: cert, keyFile: key}).get(); err == nil {
		t.Fatal("a broken pair loaded at start")
	}
}

func writeCert(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	var cb, kb bytes.Buffer
	_ = pem.Encode(&cb, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	_ = pem.Encode(&kb, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
	if err := os.WriteFile(certFile, cb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, kb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func leafCN(t *testing.T, c *tls.Certificate) string {
	t.Helper()
	l, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return l.Subject.CommonName
}
