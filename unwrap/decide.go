package unwrap

import (
	"net/http"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// decide is DESIGN.md's "Sidecar behaviour" up to forwarding, for the
// request that r describes: the proxied request itself, or the original
// request that a gateway asks about (authz.go). Path rules, public paths,
// the bearer token, verification, route scopes. On a refusal it writes
// the answer (status, challenge, body), counts and logs it, and returns
// false; otherwise it sets ri.public, or ri.authz to the Authorization
// header for the upstream, and returns true. The proxy and the decision
// endpoints share it, so that they can never disagree.
func (s *Sidecar) decide(w http.ResponseWriter, r *http.Request, ri *requestInfo) bool {
	if headerBlockSize(r) > s.MaxHeaderBytes() {
		s.fail(w, r, ri, &Failure{Status: http.StatusRequestHeaderFieldsTooLarge, Code: codeHeadersTooLarge,
			Description: "the request header block is over max_token_bytes + 8 KiB", Reason: ReasonHeadersTooLarge})
		return false
	}
	raw, decoded, ok := rawPath(r)
	if !ok {
		s.fail(w, r, ri, badRequest(ReasonBadPath))
		return false
	}
	ri.access.path = raw
	if hasQueryToken(r.URL.RawQuery) {
		s.fail(w, r, ri, badRequest(ReasonQueryToken))
		return false
	}
	if s.public[raw] || s.public[decoded] {
		ri.public = true
		return true
	}
	token, f := bearer(r.Header)
	if f != nil {
		s.fail(w, r, ri, f)
		return false
	}
	// A cached token was a b64token when it was verified: only a miss
	// needs the (per byte) syntax check, before anything else.
	var key cacheKey
	res, hit := s.verifier.cached(token, &key)
	var err error
	if !hit {
		if !isB64Token(token) {
			s.fail(w, r, ri, badRequest(ReasonMalformedHeader))
			return false
		}
		res, err = s.verifier.verifyUncached(r.Context(), token, &key)
	}
	if err != nil {
		s.failToken(w, r, ri, asFailure(err), token)
		return false
	}
	ri.access.source, ri.access.cached = res.Source, hit
	if f := s.checkRoutes(r, raw, decoded, res.InnerClaims); f != nil {
		s.fail(w, r, ri, f)
		return false
	}
	ri.authz = res.authz
	if ce := s.log.Check(zapcore.DebugLevel, "verified"); ce != nil {
		ce.Write(zap.String(fieldRequestID, ri.id), zap.String(fieldIssuer, res.Source),
			zap.String(fieldJTI, res.InnerClaims.ID), zap.Bool(fieldCached, hit))
	}
	return true
}
