package extauthz

import (
	"net/http"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/embedtoken/embedtoken/unwrap"
)

func TestRequestHeader(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		raw     []*corev3.HeaderValue
		want    http.Header
	}{
		{"pseudo-headers dropped, names canonical",
			map[string]string{":path": "/x", ":method": "GET", "authorization": "Bearer t", "x-request-id": "r1"}, nil,
			http.Header{"Authorization": {"Bearer t"}, "X-Request-Id": {"r1"}}},
		{"two names differing in case are two values",
			map[string]string{"authorization": "Bearer a", "Authorization": "Bearer b"}, nil,
			http.Header{"Authorization": {"Bearer b", "Bearer a"}}},
		{"invalid names dropped",
			map[string]string{"x-a\r\nauthorization": "x", "": "y", "bad name": "z", "ok": "1"}, nil,
			http.Header{"Ok": {"1"}}},
		{"header_map raw values",
			nil, []*corev3.HeaderValue{{Key: "authorization", RawValue: []byte("Bearer r")}, {Key: ":path", Value: "/"}},
			http.Header{"Authorization": {"Bearer r"}}},
		{"headers and header_map both count",
			map[string]string{"authorization": "Bearer a"}, []*corev3.HeaderValue{{Key: "authorization", Value: "Bearer b"}},
			http.Header{"Authorization": {"Bearer a", "Bearer b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &authv3.AttributeContext_HttpRequest{Headers: tc.headers}
			if tc.raw != nil {
				h.HeaderMap = &corev3.HeaderMap{Headers: tc.raw}
			}
			got := requestHeader(h)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for k, vs := range tc.want {
				if g := got[k]; len(g) != len(vs) || (len(vs) == 1 && g[0] != vs[0]) {
					t.Errorf("%s: got %q, want %q", k, g, vs)
				}
			}
		})
	}
}

func TestResponse(t *testing.T) {
	allowed := response(&unwrap.Decision{Status: 200,
		Header: http.Header{"Authorization": {"Bearer inner"}, "X-Request-Id": {"r1"}, "Cache-Control": {"no-store"}},
		Remove: []string{"Cookie"}})
	ok := allowed.GetOkResponse()
	if codes.Code(allowed.GetStatus().GetCode()) != codes.OK || ok == nil || len(ok.GetHeaders()) != 2 {
		t.Fatalf("allowed: %v", allowed)
	}
	if h := ok.GetHeaders()[0]; h.GetHeader().GetKey() != "authorization" || h.GetHeader().GetValue() != "Bearer inner" ||
		h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
		t.Errorf("authorization header: %v", h)
	}
	if len(ok.GetHeadersToRemove()) != 1 || ok.GetHeadersToRemove()[0] != "cookie" {
		t.Errorf("headers to remove: %q", ok.GetHeadersToRemove())
	}
	for status, want := range map[int]codes.Code{400: codes.InvalidArgument, 431: codes.InvalidArgument, 401: codes.Unauthenticated,
		403: codes.PermissionDenied, 503: codes.Unavailable, 500: codes.Internal} {
		r := response(&unwrap.Decision{Status: status, Header: http.Header{"Www-Authenticate": {`Bearer realm="orders"`}}, Body: []byte(`{"error":"x"}`)})
		d := r.GetDeniedResponse()
		if codes.Code(r.GetStatus().GetCode()) != want || d == nil || int(d.GetStatus().GetCode()) != status || d.GetBody() != `{"error":"x"}` {
			t.Errorf("%d: got %v", status, r)
		}
		if len(d.GetHeaders()) != 1 || d.GetHeaders()[0].GetHeader().GetKey() != "www-authenticate" {
			t.Errorf("%d: headers %v", status, d.GetHeaders())
		}
	}
}
