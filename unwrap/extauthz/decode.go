package extauthz

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
)

// checkRequest is what Check reads of a CheckRequest: attributes.request.http's
// method, path, host, headers and header_map. decodeCheckRequest fills it
// straight from the wire, without building the CheckRequest.
type checkRequest struct {
	method, path, host string
	headers            []headerField // the headers map's entries in wire order (later ones win)
	headerMap          []headerField // header_map's headers, value or else raw_value
	buf                [24]headerField
}

type headerField struct{ key, value string }

// Errors of decodeCheckRequest. Like proto.Unmarshal's, they name no byte of
// the input.
var (
	errDecode      = errors.New("extauthz: malformed CheckRequest")
	errInvalidUTF8 = errors.New("extauthz: CheckRequest string field is not valid UTF-8")
	errDepth       = errors.New("extauthz: CheckRequest nested too deeply")
)

// Field numbers of the messages decoded (envoy/service/auth/v3 and
// envoy/config/core/v3).
const (
	fieldCheckAttributes  = 1  // CheckRequest.attributes
	fieldAttrRequest      = 4  // AttributeContext.request
	fieldRequestTime      = 1  // AttributeContext.Request.time
	fieldRequestHTTP      = 2  // AttributeContext.Request.http
	fieldHTTPMethod       = 2  // HttpRequest.method
	fieldHTTPHeaders      = 3  // HttpRequest.headers (map<string, string>)
	fieldHTTPPath         = 4  // HttpRequest.path
	fieldHTTPHost         = 5  // HttpRequest.host
	fieldHTTPSize         = 9  // HttpRequest.size (int64)
	fieldHTTPRawBody      = 12 // HttpRequest.raw_body (bytes)
	fieldHTTPHeaderMap    = 13 // HttpRequest.header_map
	fieldHeaderMapHeaders = 1  // HeaderMap.headers
	fieldHeaderKey        = 1  // HeaderValue.key, and a map entry's key
	fieldHeaderValue      = 2  // HeaderValue.value, and a map entry's value
	fieldHeaderRawValue   = 3  // HeaderValue.raw_value (bytes)
)

// httpStringFields are HttpRequest's other string fields (id, scheme,
// query, fragment, protocol, body): not read, but checked as proto3 does.
var httpStringFields = [16]bool{1: true, 6: true, 7: true, 8: true, 10: true, 11: true}

// decoder decodes one CheckRequest held in buf; str is the same bytes as a
// string, which every decoded string is a substring of (one copy for all).
type decoder struct {
	buf []byte
	str string
	req *checkRequest
}

// decodeCheckRequest fills req from buf (str holding the same bytes) with
// the same outcome as proto.Unmarshal into an authv3.CheckRequest followed
// by reading the fields: the same error or not for every input (malformed
// varints and lengths, field number 0, unmatched groups, invalid UTF-8 in
// any string field, recursion depth) and the same values (a scalar's last
// occurrence wins, messages met twice merge, a known field with another
// wire type is an unknown field). AttributeContext's other fields (source,
// destination, context_extensions, metadata...) are checked by
// checkMessage.
func decodeCheckRequest(buf []byte, str string, req *checkRequest) error {
	d := decoder{buf: buf, str: str, req: req}
	if req.headers == nil {
		req.headers = req.buf[:0] // room for Envoy's usual header map
	}
	depth := protowire.DefaultRecursionLimit
	return d.message(0, len(buf), depth, d.checkRequestField)
}

// fieldFunc decodes one field whose tag was read; value starts at off. It
// returns the length of the value, or errUnknownField to have it skipped as
// an unknown field.
type fieldFunc func(num protowire.Number, typ protowire.Type, off, end, depth int) (int, error)

var errUnknownField = errors.New("unknown field")

// message walks the fields of a message in buf[off:end] as the protobuf
// runtime does; depth is the recursion budget before entering it.
func (d *decoder) message(off, end, depth int, field fieldFunc) error {
	if depth--; depth < 0 {
		return errDepth
	}
	for off < end {
		num, typ, n := protowire.ConsumeTag(d.buf[off:end])
		if n < 0 || num > protowire.MaxValidNumber {
			return errDecode // as the runtime: also field number 0
		}
		off += n
		if typ == protowire.EndGroupType {
			return errDecode // no group is open at a message's top level
		}
		n, err := field(num, typ, off, end, depth)
		if err == errUnknownField {
			n = protowire.ConsumeFieldValue(num, typ, d.buf[off:end])
			if n < 0 {
				return errDecode
			}
		} else if err != nil {
			return err
		}
		off += n
	}
	return nil
}

// bytesField returns the offsets of a length-delimited value at off.
func (d *decoder) bytesField(off, end int) (start, stop, n int, err error) {
	v, n := protowire.ConsumeBytes(d.buf[off:end])
	if n < 0 {
		return 0, 0, 0, errDecode
	}
	start = off + n - len(v)
	return start, start + len(v), n, nil
}

// stringField returns a string value at off, checked as UTF-8.
func (d *decoder) stringField(typ protowire.Type, off, end int) (string, int, error) {
	if typ != protowire.BytesType {
		return "", 0, errUnknownField
	}
	start, stop, n, err := d.bytesField(off, end)
	if err != nil {
		return "", 0, err
	}
	if !utf8.Valid(d.buf[start:stop]) {
		return "", 0, errInvalidUTF8
	}
	return d.str[start:stop], n, nil
}

// sub decodes an embedded message field at off with field.
func (d *decoder) sub(typ protowire.Type, off, end, depth int, field fieldFunc) (int, error) {
	if typ != protowire.BytesType {
		return 0, errUnknownField
	}
	start, stop, n, err := d.bytesField(off, end)
	if err != nil {
		return 0, err
	}
	return n, d.message(start, stop, depth, field)
}

func (d *decoder) checkRequestField(num protowire.Number, typ protowire.Type, off, end, depth int) (int, error) {
	if num != fieldCheckAttributes {
		return 0, errUnknownField
	}
	return d.sub(typ, off, end, depth, d.attributeContextField)
}

// attributeContextField decodes request and checks every other field of
// AttributeContext as proto.Unmarshal would (checkMessage).
func (d *decoder) attributeContextField(num protowire.Number, typ protowire.Type, off, end, depth int) (int, error) {
	if num == fieldAttrRequest {
		return d.sub(typ, off, end, depth, d.requestField)
	}
	return checkKnown(d.buf[off:end], typ, attributeContextFields.ByNumber(num), depth)
}

var attributeContextFields = (&authv3.AttributeContext{}).ProtoReflect().Descriptor().Fields()

func (d *decoder) requestField(num protowire.Number, typ protowire.Type, off, end, depth int) (int, error) {
	switch num {
	case fieldRequestHTTP:
		return d.sub(typ, off, end, depth, d.httpField)
	case fieldRequestTime:
		// google.protobuf.Timestamp: two varints, no string; any well-formed
		// field sequence decodes.
		return d.sub(typ, off, end, depth, noFields)
	}
	return 0, errUnknownField
}

// noFields decodes a message none of whose fields can fail beyond their
// wire format (only scalars): every field is skipped as unknown.
func noFields(protowire.Number, protowire.Type, int, int, int) (int, error) {
	return 0, errUnknownField
}

func (d *decoder) httpField(num protowire.Number, typ protowire.Type, off, end, depth int) (int, error) {
	switch num {
	case fieldHTTPMethod:
		s, n, err := d.stringField(typ, off, end)
		if err == nil {
			d.req.method = s
		}
		return n, err
	case fieldHTTPPath:
		s, n, err := d.stringField(typ, off, end)
		if err == nil {
			d.req.path = s
		}
		return n, err
	case fieldHTTPHost:
		s, n, err := d.stringField(typ, off, end)
		if err == nil {
			d.req.host = s
		}
		return n, err
	case fieldHTTPHeaders:
		return d.mapEntry(typ, off, end, depth)
	case fieldHTTPHeaderMap:
		return d.sub(typ, off, end, depth, d.headerMapField)
	case fieldHTTPSize:
		if typ != protowire.VarintType {
			return 0, errUnknownField
		}
		if _, n := protowire.ConsumeVarint(d.buf[off:end]); n < 0 {
			return 0, errDecode
		} else {
			return n, nil
		}
	case fieldHTTPRawBody:
		if typ != protowire.BytesType {
			return 0, errUnknownField
		}
		_, _, n, err := d.bytesField(off, end)
		return n, err
	}
	if int(num) < len(httpStringFields) && httpStringFields[num] {
		_, n, err := d.stringField(typ, off, end)
		return n, err
	}
	return 0, errUnknownField
}

// mapEntry decodes one entry of the headers map as the runtime's map
// decoder does: key and value default to "", the last of each wins, other
// fields are skipped, and the entry counts one level of depth.
func (d *decoder) mapEntry(typ protowire.Type, off, end, depth int) (int, error) {
	if depth--; depth < 0 {
		return 0, errDepth
	}
	if typ != protowire.BytesType {
		return 0, errUnknownField
	}
	start, stop, n, err := d.bytesField(off, end)
	if err != nil {
		return 0, err
	}
	var f headerField
	for p := start; p < stop; {
		num, wtyp, m := protowire.ConsumeTag(d.buf[p:stop])
		if m < 0 || num > protowire.MaxValidNumber {
			return 0, errDecode
		}
		p += m
		err := errUnknownField
		switch num {
		case fieldHeaderKey:
			var s string
			if s, m, err = d.stringField(wtyp, p, stop); err == nil {
				f.key = s
			}
		case fieldHeaderValue:
			var s string
			if s, m, err = d.stringField(wtyp, p, stop); err == nil {
				f.value = s
			}
		}
		if err == errUnknownField {
			if m = protowire.ConsumeFieldValue(num, wtyp, d.buf[p:stop]); m < 0 {
				return 0, errDecode
			}
		} else if err != nil {
			return 0, err
		}
		p += m
	}
	d.req.headers = append(d.req.headers, f)
	return n, nil
}

func (d *decoder) headerMapField(num protowire.Number, typ protowire.Type, off, end, depth int) (int, error) {
	if num != fieldHeaderMapHeaders {
		return 0, errUnknownField
	}
	var hv struct {
		key, value string
		raw        [2]int // offsets of raw_value in buf
	}
	n, err := d.sub(typ, off, end, depth, func(num protowire.Number, typ protowire.Type, off, end, _ int) (int, error) {
		switch num {
		case fieldHeaderKey:
			s, n, err := d.stringField(typ, off, end)
			if err == nil {
				hv.key = s
			}
			return n, err
		case fieldHeaderValue:
			s, n, err := d.stringField(typ, off, end)
			if err == nil {
				hv.value = s
			}
			return n, err
		case fieldHeaderRawValue:
			if typ != protowire.BytesType {
				return 0, errUnknownField
			}
			start, stop, n, err := d.bytesField(off, end)
			if err == nil {
				hv.raw = [2]int{start, stop}
			}
			return n, err
		}
		return 0, errUnknownField
	})
	if err != nil {
		return 0, err
	}
	v := hv.value
	if v == "" {
		v = d.str[hv.raw[0]:hv.raw[1]]
	}
	d.req.headerMap = append(d.req.headerMap, headerField{hv.key, v})
	return n, nil
}

// header turns Envoy's header map (lower-case names; repeated headers
// joined with ","; its last entry of a name wins, in the order of the
// names) and then its header_map (for raw header values) into an
// http.Header. Pseudo-headers (":path"...) are dropped: method, path and
// host come from their own fields. A name that is not a valid header name
// is dropped. Two names that differ only in case become two values of one
// header, which the decision refuses where it matters (several
// Authorization headers: 400).
func (r *checkRequest) header() http.Header {
	// A stable sort keeps wire order among equal keys: the last one of each
	// key is the map's value.
	slices.SortStableFunc(r.headers, func(a, b headerField) int { return strings.Compare(a.key, b.key) })
	out := make(http.Header, len(r.headers)+len(r.headerMap))
	for i, f := range r.headers {
		if i+1 < len(r.headers) && r.headers[i+1].key == f.key {
			continue
		}
		addHeader(out, f.key, f.value)
	}
	for _, f := range r.headerMap {
		addHeader(out, f.key, f.value)
	}
	return out
}
