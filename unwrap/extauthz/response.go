package extauthz

import (
	"strings"
	"sync"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/embedtoken/embedtoken/unwrap"
)

// statusOK is every allowed response's status: shared, never modified
// (marshalling a message from several goroutines at once is safe).
var statusOK = &rpcstatus.Status{Code: int32(codes.OK)}

// okResponse holds every part of an allowed CheckResponse, allocated at
// once (one allocation instead of about ten).
type okResponse struct {
	resp   authv3.CheckResponse
	oneof  authv3.CheckResponse_OkResponse
	ok     authv3.OkHttpResponse
	opts   [2]corev3.HeaderValueOption
	values [2]corev3.HeaderValue
	list   [2]*corev3.HeaderValueOption
}

// okHeaders are the headers an allowed response sets, and their names as
// Envoy gets them.
var okHeaders = [2][2]string{{"Authorization", "authorization"}, {"X-Request-Id", "x-request-id"}}

// allowedResponse is response's OkHttpResponse.
func allowedResponse(d *unwrap.Decision) *authv3.CheckResponse {
	r := &okResponse{}
	for _, h := range okHeaders {
		if v := d.Header.Get(h[0]); v != "" {
			i := len(r.ok.Headers)
			r.values[i].Key, r.values[i].Value = h[1], v
			r.opts[i].Header = &r.values[i]
			r.opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			r.list[i] = &r.opts[i]
			r.ok.Headers = r.list[:i+1]
		}
	}
	if len(d.Remove) > 0 {
		r.ok.HeadersToRemove = make([]string, len(d.Remove))
		for i, name := range d.Remove {
			r.ok.HeadersToRemove[i] = lowerName(name)
		}
	}
	r.oneof.OkResponse = &r.ok
	r.resp.Status = statusOK
	r.resp.HttpResponse = &r.oneof
	return &r.resp
}

// lowerNames caches the lower-case form of the header names removed
// (Authorization and strip_headers: a few names per configuration); at
// most maxLowerNames are kept, in case names came from elsewhere.
var (
	lowerNames     sync.Map // string → string
	lowerNameCount atomic.Int32
)

const maxLowerNames = 256

func lowerName(name string) string {
	if v, ok := lowerNames.Load(name); ok {
		return v.(string)
	}
	lower := strings.ToLower(name)
	if lowerNameCount.Add(1) <= maxLowerNames {
		lowerNames.Store(name, lower)
	}
	return lower
}
