package netlimit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRefuseAtOnce(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"refusal with body", "x=1", http.StatusUnauthorized, "close"},
		{"success with body", "x=1", http.StatusOK, ""},
		{"refusal without body", "", http.StatusUnauthorized, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := RefuseAtOnce(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if rc := http.NewResponseController(w); rc == nil {
					t.Fatal("no response controller")
				}
				w.WriteHeader(tc.status)
			}))
			var r *http.Request
			if tc.body != "" {
				r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			} else {
				r = httptest.NewRequest(http.MethodGet, "/", nil)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if got := rec.Header().Get("Connection"); got != tc.want {
				t.Errorf("Connection: got %q, want %q", got, tc.want)
			}
		})
	}
}
