package cmd

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestReadyzSaysWhy(t *testing.T) {
	tests := []struct {
		name       string
		notReady   error
		wantStatus int
		wantBody   string
	}{
		{"ready", nil, 200, "ready\n"},
		{"key set", errors.New("key set of hydra (http://127.0.0.1:4444/.well-known/jwks.json) not loaded yet: last error: connection refused"), 503,
			"not ready: key set of hydra (http://127.0.0.1:4444/.well-known/jwks.json) not loaded yet: last error: connection refused\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := adminHandlerWhy(newRegistry(), func() error { return tc.notReady })
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tc.wantStatus || rec.Body.String() != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body, tc.wantStatus, tc.wantBody)
			}
		})
	}
	// adminHandler (the hook's): a plain reason.
	rec := httptest.NewRecorder()
	adminHandler(newRegistry(), func() bool { return false }).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 503 || rec.Body.String() != "not ready: starting\n" {
		t.Errorf("hook readyz: %d %q", rec.Code, rec.Body)
	}
}
