package extauthz

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/embedtoken/embedtoken/unwrap"
)

// BenchmarkDecode compares what Check reads of an Envoy-shaped request
// with a 5.7 KB bearer: proto.Unmarshal and requestHeader (before the
// codec) against decodeCheckRequest and header (the codec). CPU per op and
// allocations, old and new in one run.
func BenchmarkDecode(b *testing.B) {
	bearer := "Bearer " + strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 272)
	in := marshal(b, envoyRequest("GET", "/orders/1?page=2", map[string]string{"authorization": bearer}))
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			method, path, host, h, err := reference(in)
			if err != nil || method == "" || path == "" || host == "" || len(h) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("protowire", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var r checkRequest
			if err := decodeCheckRequest(in, string(in), &r); err != nil || r.method == "" || len(r.header()) == 0 {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkResponse is the CheckResponse of an allowed and a refused
// decision, marshalled as gRPC sends it.
func BenchmarkResponse(b *testing.B) {
	allowed := &unwrap.Decision{Status: 200, Header: http.Header{"Authorization": {"Bearer " + strings.Repeat("x", 600)},
		"X-Request-Id": {"5b2e9c1a-7d4f-4e8a-b3c6-0f1e2d3c4b5a"}}, Remove: []string{"Cookie"}}
	refused := &unwrap.Decision{Status: 401, Header: http.Header{"Www-Authenticate": {`Bearer realm="orders", error="invalid_token"`},
		"Content-Type": {"application/json"}, "X-Request-Id": {"r1"}}, Body: []byte(`{"error":"invalid_token"}`)}
	for _, c := range []struct {
		name string
		d    *unwrap.Decision
	}{{"allowed", allowed}, {"refused", refused}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := proto.Marshal(response(c.d)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
