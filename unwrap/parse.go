package unwrap

import (
	"errors"
	"strings"

	"github.com/embedtoken/embedtoken/internal/strictjson"
)

// header is the JOSE header of a token, as far as we read it. Keys and
// URLs in the header (jwk, jku, x5u, x5c) are never read: keys come from the
// issuer's configured key set only.
type header struct {
	Alg string
	Kid string
	// Typ is the typ header; HasTyp is false when it is absent or null.
	Typ    string
	HasTyp bool
	// Crit is true when a crit member is present, whatever its value.
	Crit bool
}

// normTyp lower-cases typ and strips an "application/" prefix (RFC 7515
// 4.1.9). A missing typ is "".
func (h *header) normTyp() string {
	if !h.HasTyp {
		return ""
	}
	t := strings.ToLower(h.Typ)
	return strings.TrimPrefix(t, "application/")
}

// parsed is a token split and decoded, but not yet verified. It is meant to
// live on the caller's stack: nothing kept beyond verification may alias
// payload (decoded strings are copies).
type parsed struct {
	header header
	claims Claims
	// payload is the decoded payload; members are its top-level members
	// other than the registered claims, in order.
	payload []byte
	members []rawMember
	small   [8]rawMember
	// signingInput is the token up to its last dot: what was signed; sig
	// is the base64url signature.
	signingInput string
	sig          string
	// pool is set by pooledPayloads; pooled is then the recycled buffer
	// payload lives in, until release.
	pool   bool
	pooled *[]byte
}

// parseToken splits a compact JWS into p, decodes its header and payload
// strictly (base64url without padding, CR or LF, one JSON object, no duplicate member
// names, registered claims of the right JSON types; member names match
// exactly, as RFC 7519 4 wants) and refuses any crit header. The payload
// is read once: the registered claims are decoded, the other top-level
// members remembered for the embedded map and Claims.Extra. It verifies
// nothing.
func parseToken(token string, p *parsed) *Failure {
	// Go's base64 decoders skip CR and LF even in strict mode: without this
	// a token would have many spellings (a signature split by newlines
	// verifies), and VerifyOuter has no b64token check in front of it.
	if strings.IndexByte(token, '\n') >= 0 || strings.IndexByte(token, '\r') >= 0 {
		return invalid(ReasonMalformed, errBase64)
	}
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return invalid(ReasonMalformed, errDots)
	}
	pl, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 || h == "" || pl == "" || sig == "" {
		return invalid(ReasonMalformed, errDots)
	}
	p.signingInput, p.sig = token[:len(h)+1+len(pl)], sig
	var hbuf [384]byte
	hb := hbuf[:0]
	if n := b64url.DecodedLen(len(h)); n > len(hbuf) {
		hb = make([]byte, 0, n)
	}
	hb, err := b64url.AppendDecode(hb, bytesOf(h))
	if err != nil {
		return invalid(ReasonMalformed, errBase64)
	}
	if p.payload, err = b64url.AppendDecode(p.payloadBuf(b64url.DecodedLen(len(pl))), bytesOf(pl)); err != nil {
		return invalid(ReasonMalformed, errBase64)
	}
	if f := checkStrict(hb); f != nil {
		return f
	}
	if f := decodeHeader(hb, &p.header); f != nil {
		return f
	}
	if p.header.Crit {
		return invalid(ReasonCrit, errCritHeader)
	}
	if f := checkStrict(p.payload); f != nil {
		return f
	}
	p.members = p.small[:0]
	ok, p.members = decodeClaims(p.payload, &p.claims, p.members)
	if !ok {
		return invalid(ReasonClaimType, errClaimType)
	}
	return nil
}

// checkStrict refuses what is not exactly one JSON object, or holds
// duplicate member names at any depth (RFC 7519 4, RFC 8725 3.1 allow
// parsers to accept them; we never do).
func checkStrict(data []byte) *Failure {
	if err := strictjson.CheckObject(data); err != nil {
		if errors.Is(err, strictjson.ErrDuplicate) {
			return invalid(ReasonDuplicateMember, err)
		}
		return invalid(ReasonMalformed, err)
	}
	return nil
}

// decodeHeader reads alg, kid, typ and crit from a header object that
// passed checkStrict.
func decodeHeader(data []byte, h *header) *Failure {
	it := objectIter{b: data, i: skipSpace(data, 0) + 1} // JSON may start with whitespace
	bad := false
	for m, more := it.next(); more; m, more = it.next() {
		switch m.name() {
		case "alg":
			bad = !stringInto(m.value, &h.Alg) || bad
		case "kid":
			bad = !stringInto(m.value, &h.Kid) || bad
		case "typ":
			if m.value[0] == 'n' {
				h.Typ, h.HasTyp = "", false
				continue
			}
			h.HasTyp = true
			bad = !stringInto(m.value, &h.Typ) || bad
		case "crit":
			h.Crit = true
		}
	}
	if bad {
		return invalid(ReasonClaimType, errClaimType)
	}
	return nil
}
