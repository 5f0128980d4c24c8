package kube

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzInjectYAML: whatever YAML comes in, inject either refuses it or
// writes YAML that injecting again leaves unchanged. Seeds: the golden
// inputs.
func FuzzInjectYAML(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "inject", "*.in.yaml"))
	for _, p := range inputs {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("kind: List\nitems: [{kind: Pod, spec: {containers: []}}]\n"))
	pi, err := injectorFor([]string{kubeHCL}, "orders", "embedtoken:1.0", "embedtoken", io.Discard)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, err := pi.injectYAML(in)
		if err != nil {
			return
		}
		again, _, err := pi.injectYAML(out)
		if err != nil {
			t.Fatalf("output refused on a second pass: %v\n%s", err, out)
		}
		if string(again) != string(out) {
			t.Fatalf("not idempotent:\n%s\n---\n%s", out, again)
		}
	})
}

// FuzzAdmissionReview: any body gets an HTTP error or a well-formed
// review response, never a panic.
func FuzzAdmissionReview(f *testing.F) {
	f.Add(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod","version":"v1"},"operation":"CREATE","object":{"metadata":{"annotations":{"embedtoken.dev/api":"orders"}},"spec":{"containers":[{"name":"a"}]}}}}`)
	f.Add(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod","version":"v1"},"operation":"CREATE","object":{"metadata":{"annotations":{"embedtoken.dev/api":"orders"}},"spec":{"initContainers":{},"containers":[]}}}}`)
	f.Add(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","object":null}}`)
	wh, err := newWebhook([]string{kubeHCL}, "embedtoken:1.0", "embedtoken", io.Discard)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/mutate", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		wh.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK && !strings.Contains(rec.Body.String(), `"kind":"AdmissionReview"`) {
			t.Fatalf("200 without a review: %s", rec.Body.String())
		}
	})
}
