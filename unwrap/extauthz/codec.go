package extauthz

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// codec is the server's gRPC codec: gRPC's own proto codec, except that a
// Check call's request is decoded by decodeCheckRequest into a
// checkRequest (only the fields the decision reads, one string copy of the
// message) instead of proto.Unmarshal into an authv3.CheckRequest (a Go map
// and a string per header): ~19 % of the CPU of a decision (BENCHMARKS.md).
type codec struct{ encoding.CodecV2 }

func newCodec() codec { return codec{encoding.GetCodecV2(proto.Name)} }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*checkRequest)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		b = buf.ReadOnlyData()
	}
	return decodeCheckRequest(b, string(b), req)
}

// authorizationDesc is authv3.Authorization_ServiceDesc with a Check
// handler that decodes into a checkRequest (through codec).
var authorizationDesc = grpc.ServiceDesc{
	ServiceName: authv3.Authorization_ServiceDesc.ServiceName,
	HandlerType: (*checker)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Check",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			// The call is counted from before its message arrives: a
			// caller that opens calls and never completes their message
			// holds at most maxCalls of them (~20 KB each).
			a := srv.(checker)
			if !a.enter() {
				return nil, errTooManyCalls
			}
			defer a.leave()
			in := new(checkRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			if interceptor == nil {
				return srv.(checker).check(ctx, in), nil
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName}
			return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return srv.(checker).check(ctx, req.(*checkRequest)), nil
			})
		},
	}},
	Streams:  []grpc.StreamDesc{},
	Metadata: authv3.Authorization_ServiceDesc.Metadata,
}

type checker interface {
	check(ctx context.Context, req *checkRequest) *authv3.CheckResponse
	enter() bool
	leave()
}
