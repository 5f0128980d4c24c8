package extauthz

import (
	"context"
	"net"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/embedtoken/embedtoken/unwrap"
)

// TestCheckCallsBounded: calls whose message never completes are counted
// from their start; beyond the bound a call is refused at once
// (UNAVAILABLE: Envoy fails closed), and ending them frees their places.
func TestCheckCallsBounded(t *testing.T) {
	const bound = 2
	srv := newServer(func() *unwrap.Sidecar { return nil }, bound) // no call reaches a decision
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitCalls := func(want int64) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); srv.auth.calls.Load() != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) { // a bound, not a timing assertion
				t.Fatalf("%d calls in flight, want %d", srv.auth.calls.Load(), want)
			}
		}
	}
	// Calls that announce a message and never send it.
	ctx, cancel := context.WithCancel(context.Background())
	for range bound {
		s, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, authv3.Authorization_Check_FullMethodName)
		if err != nil {
			t.Fatal(err)
		}
		_ = s // headers sent; no message
	}
	waitCalls(bound)
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()
	_, err = authv3.NewAuthorizationClient(conn).Check(cctx, &authv3.CheckRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("call beyond the bound: %v, want UNAVAILABLE", err)
	}
	cancel()
	waitCalls(0)
}
