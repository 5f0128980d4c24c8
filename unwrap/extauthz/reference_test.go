package extauthz

import (
	"net/http"
	"sort"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// requestHeader is how Check read the headers of an authv3.CheckRequest
// before the codec: the reference that decodeCheckRequest and
// checkRequest.header must match (FuzzDecodeCheckRequest).
//
// It turns Envoy's header map (lower-case names; repeated
// headers joined with ","), or its header_map when Envoy sends raw header
// values, into an http.Header. Pseudo-headers (":path"...) are dropped:
// method, path and host come from their own fields. A name that is not a
// valid header name is dropped. Two names that differ only in case become
// two values of one header, which the decision refuses where it matters
// (several Authorization headers: 400).
func requestHeader(h *authv3.AttributeContext_HttpRequest) http.Header {
	out := make(http.Header, len(h.GetHeaders())+len(h.GetHeaderMap().GetHeaders()))
	add := func(k, v string) { addHeader(out, k, v) }
	keys := make([]string, 0, len(h.GetHeaders()))
	for k := range h.GetHeaders() {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable order for the values of one name
	for _, k := range keys {
		add(k, h.GetHeaders()[k])
	}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		v := hv.GetValue()
		if v == "" {
			v = string(hv.GetRawValue())
		}
		add(hv.GetKey(), v)
	}
	return out
}
