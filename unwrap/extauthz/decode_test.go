package extauthz

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// envoyRequest is a CheckRequest shaped like Envoy's (e2e/envoy_grpc_test.go):
// source, destination, time, lower-case header map with pseudo-headers.
func envoyRequest(method, path string, headers map[string]string) *authv3.CheckRequest {
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	h := map[string]string{":authority": "orders.example.com", ":method": method, ":path": path, ":scheme": "https",
		"user-agent": "curl/8.5.0", "accept": "*/*", "x-forwarded-proto": "https", "x-request-id": "5b2e9c1a-7d4f-4e8a-b3c6-0f1e2d3c4b5a"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr("10.0.0.7", 51234), Principal: "spiffe://cluster.local/ns/a/sa/b"},
		Destination: &authv3.AttributeContext_Peer{Address: addr("10.0.0.9", 8080)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "13094712893745", Method: method, Headers: h, Path: path,
				Host: "orders.example.com", Scheme: "https", Protocol: "HTTP/1.1", Size: -1,
			},
		},
		ContextExtensions: map[string]string{"route": "orders"},
	}}
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reference is what Check read before the codec: proto.Unmarshal and the
// fields of attributes.request.http.
func reference(b []byte) (method, path, host string, h http.Header, err error) {
	var m authv3.CheckRequest
	if err := proto.Unmarshal(b, &m); err != nil {
		return "", "", "", nil, err
	}
	hr := m.GetAttributes().GetRequest().GetHttp()
	return hr.GetMethod(), hr.GetPath(), hr.GetHost(), requestHeader(hr), nil
}

// differ returns how decodeCheckRequest's outcome on b differs from the
// reference's, or "".
func differ(b []byte) string {
	method, path, host, h, refErr := reference(b)
	var r checkRequest
	err := decodeCheckRequest(b, string(b), &r)
	switch {
	case (err == nil) != (refErr == nil):
		return "error " + errString(err) + ", proto.Unmarshal: " + errString(refErr)
	case err != nil:
		return ""
	case r.method != method || r.path != path || r.host != host:
		return "method, path or host differ: " + r.method + " " + r.path + " " + r.host + " vs " + method + " " + path + " " + host
	}
	if got := r.header(); !reflect.DeepEqual(got, h) {
		return "headers differ"
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// Hand-made wire fragments.
func tag(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
func lenField(num protowire.Number, v ...[]byte) []byte {
	return protowire.AppendBytes(tag(num, protowire.BytesType), cat(v...))
}
func cat(v ...[]byte) []byte {
	var b []byte
	for _, x := range v {
		b = append(b, x...)
	}
	return b
}

// httpOnly wraps HttpRequest field bytes into a CheckRequest.
func httpOnly(fields ...[]byte) []byte {
	return lenField(1, lenField(4, lenField(2, fields...)))
}

func str(num protowire.Number, s string) []byte { return lenField(num, []byte(s)) }

func entry(k, v string) []byte { return lenField(3, str(1, k), str(2, v)) }

// decodeCases are table inputs for the differential check; they also seed
// the fuzz target.
func decodeCases(t testing.TB) []struct {
	name string
	in   []byte
	ok   bool
} {
	bearer := "Bearer " + strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 200)
	big := envoyRequest("GET", "/orders/1?page=2", map[string]string{"authorization": bearer})
	rawMap := envoyRequest("POST", "/orders", nil)
	rawMap.Attributes.Request.Http.Headers = nil
	rawMap.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":path", Value: "/orders"}, {Key: "authorization", RawValue: []byte(bearer)}, {Key: "x-a", Value: "1", RawValue: []byte("2")}}}
	meta := envoyRequest("GET", "/", nil)
	meta.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": {Fields: map[string]*structpb.Value{"k": structpb.NewStringValue("v")}}}}
	two := cat(marshal(t, envoyRequest("GET", "/a", map[string]string{"authorization": "Bearer a"})),
		marshal(t, envoyRequest("PUT", "/b", map[string]string{"authorization": "Bearer b", "x-b": "1"})))
	return []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"empty", nil, true},
		{"envoy-shaped with a large bearer", marshal(t, big), true},
		{"header_map with raw values", marshal(t, rawMap), true},
		{"metadata context", marshal(t, meta), true},
		{"two messages concatenated merge, last scalar wins", two, true},
		{"duplicate map keys: last wins", httpOnly(entry("authorization", "Bearer a"), entry("authorization", "Bearer b"), entry("x", "1")), true},
		{"map entry without key or value", httpOnly(lenField(3), lenField(3, str(2, "v"))), true},
		{"map entry with unknown field and repeated key", httpOnly(lenField(3, str(1, "a"), str(1, "b"), protowire.AppendVarint(tag(7, protowire.VarintType), 1), str(2, "v"))), true},
		{"method as varint is an unknown field", httpOnly(protowire.AppendVarint(tag(2, protowire.VarintType), 5), str(4, "/p")), true},
		{"empty method after a set one wins", httpOnly(str(2, "GET"), str(2, "")), true},
		{"invalid UTF-8 in path", httpOnly(str(4, "/\xff")), false},
		{"invalid UTF-8 in method", httpOnly(str(2, "G\xc3")), false},
		{"invalid UTF-8 in an unread string (query)", httpOnly(str(7, "\xff")), false},
		{"invalid UTF-8 in a header key", httpOnly(entry("x-\xfe", "v")), false},
		{"invalid UTF-8 in a header value", httpOnly(entry("x", "\xfe")), false},
		{"invalid UTF-8 in header_map value", httpOnly(lenField(13, lenField(1, str(1, "k"), str(2, "\xff")))), false},
		{"invalid raw_value bytes are fine", httpOnly(lenField(13, lenField(1, str(1, "k"), str(3, "\xff")))), true},
		{"invalid UTF-8 in source principal", lenField(1, lenField(1, str(4, "\xff"))), false},
		{"invalid UTF-8 in context_extensions", lenField(1, lenField(10, str(1, "\xff"))), false},
		{"invalid UTF-8 in an unknown field is fine", httpOnly(str(99, "\xff")), true},
		{"truncated length", httpOnly([]byte{0x22, 0x05, '/', 'a'}), false},
		{"malformed varint", httpOnly(append(tag(9, protowire.VarintType), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), false},
		{"truncated varint", httpOnly(append(tag(9, protowire.VarintType), 0x80)), false},
		{"field number 0", []byte{0x02, 0x00}, false},
		{"stray end group", httpOnly(tag(5, protowire.EndGroupType)), false},
		{"group as unknown field", httpOnly(tag(4, protowire.StartGroupType), str(1, "x"), tag(4, protowire.EndGroupType), str(4, "/p")), true},
		{"unterminated group", httpOnly(tag(4, protowire.StartGroupType), str(1, "x")), false},
		{"non-minimal tag before source", lenField(1, []byte{0x8a, 0x00, 0x00}), true},
		{"non-minimal tag with bad source", lenField(1, []byte{0x8a, 0x00, 0x03, 0x22, 0x01, 0xff}), false},
		{"unknown top-level fields", cat(str(2, "\xff"), protowire.AppendFixed64(tag(3, protowire.Fixed64Type), 1), httpOnly(str(4, "/p"))), true},
	}
}

func TestDecodeCheckRequest(t *testing.T) {
	for _, tc := range decodeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, _, err := reference(tc.in); (err == nil) != tc.ok {
				t.Fatalf("proto.Unmarshal: %v, want ok %v (the case is wrong)", err, tc.ok)
			}
			if d := differ(tc.in); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestDecodeCheckRequestDepth(t *testing.T) {
	// Struct values nested near the recursion limit in metadata_context, a
	// field the decoder checks by proto.Unmarshal with the depth left there.
	refused := 0
	levels := []int{4990, 4995, 4996, 4997, 5000}
	for _, levels := range levels {
		v := structpb.NewStringValue("x")
		for i := 0; i < levels; i++ {
			v = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
		}
		m := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{MetadataContext: &corev3.Metadata{
			FilterMetadata: map[string]*structpb.Struct{"f": {Fields: map[string]*structpb.Value{"k": v}}}}}}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if d := differ(b); d != "" {
			t.Errorf("%d levels: %s", levels, d)
		}
		if _, _, _, _, err := reference(b); err != nil {
			refused++
		}
	}
	if refused == 0 || refused == len(levels) {
		t.Errorf("proto.Unmarshal refused %d of %d: the depths do not straddle the limit", refused, len(levels))
	}
}

func FuzzDecodeCheckRequest(f *testing.F) {
	for _, tc := range decodeCases(f) {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if d := differ(b); d != "" {
			t.Errorf("%x: %s", b, d)
		}
	})
}
