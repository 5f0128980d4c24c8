package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// grpcLoadResult is what one grpc-load run measured.
type grpcLoadResult struct {
	Calls      int64   `json:"calls"`
	Errors     int64   `json:"errors"`
	Seconds    float64 `json:"seconds"`
	SidecarCPU float64 `json:"sidecar_cpu_s"` // utime+stime of the sidecar over the measured calls
	ClientCPU  float64 `json:"client_cpu_s"`
}

// runGRPCLoad is the subcommand
//
//	loadbench grpc-load ADDR TOKENFILE CALLS CONCURRENCY CONNS SIDECARPID OUT
//
// a bounded load of Envoy-shaped ext_authz v3 CheckRequests (the real
// generated types) on CONNS HTTP/2 connections with CONCURRENCY calls in
// flight, the tokens of TOKENFILE in turn. After a warm-up of CALLS/10
// calls it reads the sidecar's utime+stime from /proc, makes CALLS calls,
// reads it again and writes a grpcLoadResult to OUT. Every call must be
// allowed (OK); any other answer counts as an error.
func runGRPCLoad(args []string) error {
	if len(args) != 7 {
		return errors.New("usage: grpc-load ADDR TOKENFILE CALLS CONCURRENCY CONNS SIDECARPID OUT")
	}
	var n [4]int
	for i, a := range args[2:6] {
		v, err := strconv.Atoi(a)
		if err != nil || v < 1 {
			return fmt.Errorf("grpc-load: %q is not a positive number", a)
		}
		n[i] = v
	}
	calls, conc, nconn, pid := n[0], n[1], n[2], n[3]
	b, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	var reqs []*authv3.CheckRequest
	for _, tok := range strings.Fields(string(b)) {
		reqs = append(reqs, envoyShapedCheck("GET", "/orders/42?expand=items", "Bearer "+tok))
	}
	if len(reqs) == 0 {
		return errors.New("grpc-load: no tokens")
	}
	clients := make([]authv3.AuthorizationClient, nconn)
	for i := range clients {
		cc, err := grpc.NewClient("passthrough:///"+args[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer cc.Close()
		clients[i] = authv3.NewAuthorizationClient(cc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var next, errs atomic.Int64
	run := func(total int64) {
		next.Store(0)
		var wg sync.WaitGroup
		for g := 0; g < conc; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				cl := clients[g%nconn]
				for {
					i := next.Add(1) - 1
					if i >= total || ctx.Err() != nil {
						return
					}
					resp, err := cl.Check(ctx, reqs[int(i)%len(reqs)])
					if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.OK || resp.GetOkResponse() == nil {
						errs.Add(1)
					}
				}
			}(g)
		}
		wg.Wait()
	}
	run(int64(max(calls/10, 1)))
	if e := errs.Load(); e > 0 {
		return fmt.Errorf("grpc-load: %d of the warm-up calls were not allowed", e)
	}
	sc0, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	me0, err := cpuSeconds(os.Getpid())
	if err != nil {
		return err
	}
	t0 := time.Now()
	run(int64(calls))
	el := time.Since(t0)
	sc1, err1 := cpuSeconds(pid)
	me1, err2 := cpuSeconds(os.Getpid())
	if err := errors.Join(err1, err2, ctx.Err()); err != nil {
		return err
	}
	out, err := json.Marshal(grpcLoadResult{Calls: int64(calls), Errors: errs.Load(), Seconds: el.Seconds(), SidecarCPU: sc1 - sc0, ClientCPU: me1 - me0})
	if err != nil {
		return err
	}
	return os.WriteFile(args[6], out, 0o600)
}

// envoyShapedCheck is a CheckRequest as Envoy sends it: the original
// request in attributes.request.http with its pseudo-headers and
// lower-case names in the header map, source, destination and time set
// (as e2e/envoy_grpc_test.go's envoyCheck).
func envoyShapedCheck(method, path, authorization string) *authv3.CheckRequest {
	h := map[string]string{
		":authority": "orders.example.com", ":method": method, ":path": path, ":scheme": "https",
		"user-agent": "curl/8.5.0", "accept": "*/*", "x-forwarded-proto": "https",
		"x-request-id": "5b2e9c1a-7d4f-4e8a-b3c6-0f1e2d3c4b5a", "authorization": authorization,
	}
	peer := func(ip string, port uint32) *authv3.AttributeContext_Peer {
		return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      peer("10.0.0.7", 51234),
		Destination: peer("10.0.0.9", 8080),
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "13094712893745", Method: method, Headers: h, Path: path,
				Host: "orders.example.com", Scheme: "https", Protocol: "HTTP/1.1",
			},
		},
	}}
}
