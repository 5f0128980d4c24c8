package extauthz

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
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

// deniedParts holds the parts of a refused CheckResponse, allocated at
// once; headers beyond len(opts) are allocated one by one.
type deniedParts struct {
	resp   authv3.CheckResponse
	oneof  authv3.CheckResponse_DeniedResponse
	denied authv3.DeniedHttpResponse
	status rpcstatus.Status
	http   typev3.HttpStatus
	opts   [6]corev3.HeaderValueOption
	values [6]corev3.HeaderValue
	list   [6]*corev3.HeaderValueOption
}

// deniedResponse is response's DeniedHttpResponse: the proxy's status,
// headers (in the order of their names) and body, and the gRPC code of
// that status.
func deniedResponse(d *unwrap.Decision) *authv3.CheckResponse {
	r := &deniedParts{}
	var buf [8]string
	names := buf[:0]
	for k := range d.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	r.denied.Headers = r.list[:0]
	for _, k := range names {
		for _, v := range d.Header[k] {
			i := len(r.denied.Headers)
			if i >= len(r.opts) {
				r.denied.Headers = append(r.denied.Headers, overwrite(k, v))
				continue
			}
			r.values[i].Key, r.values[i].Value = lowerName(k), v
			r.opts[i].Header = &r.values[i]
			r.opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			r.denied.Headers = append(r.denied.Headers, &r.opts[i])
		}
	}
	if len(r.denied.Headers) == 0 {
		r.denied.Headers = nil
	}
	r.http.Code = typev3.StatusCode(d.Status)
	r.denied.Status = &r.http
	r.denied.Body = string(d.Body)
	r.status.Code, r.status.Message = int32(code(d.Status)), http.StatusText(d.Status)
	r.oneof.DeniedResponse = &r.denied
	r.resp.Status = &r.status
	r.resp.HttpResponse = &r.oneof
	return &r.resp
}
