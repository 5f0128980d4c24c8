package extauthz

import (
	"net/http"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/embedtoken/embedtoken/unwrap"
)

// TestResponseParts checks the responses built from preallocated parts
// against the same messages built field by field.
func TestResponseParts(t *testing.T) {
	opt := func(k, v string) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
	}
	many := http.Header{"X-A": {"1", "2", "3"}, "X-B": {"4", "5"}, "Www-Authenticate": {"Bearer"}, "Retry-After": {"5"}}
	tests := []struct {
		name string
		d    *unwrap.Decision
		want *authv3.CheckResponse
	}{
		{"allowed, public path (no authorization), headers removed",
			&unwrap.Decision{Status: 200, Header: http.Header{"X-Request-Id": {"r1"}}, Remove: []string{"Authorization", "Cookie", "X-Custom-Strip"}},
			&authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers: []*corev3.HeaderValueOption{opt("x-request-id", "r1")}, HeadersToRemove: []string{"authorization", "cookie", "x-custom-strip"}}}}},
		{"allowed, nothing", &unwrap.Decision{Status: 200, Header: http.Header{}},
			&authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}},
		{"refused with more header values than preallocated, in name order",
			&unwrap.Decision{Status: 503, Header: many, Body: []byte(`{}`)},
			&authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.Unavailable), Message: "Service Unavailable"},
				HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
					Status: &typev3.HttpStatus{Code: 503}, Body: "{}",
					Headers: []*corev3.HeaderValueOption{opt("retry-after", "5"), opt("www-authenticate", "Bearer"),
						opt("x-a", "1"), opt("x-a", "2"), opt("x-a", "3"), opt("x-b", "4"), opt("x-b", "5")}}}}},
		{"refused without headers", &unwrap.Decision{Status: 400, Header: http.Header{}},
			&authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: "Bad Request"},
				HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: 400}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := response(tc.d); !proto.Equal(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}
