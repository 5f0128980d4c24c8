package mint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"
)

// hydraRequest is the part of an Ory Hydra v2 token hook request the hook
// reads. Hydra sends many more fields; they are ignored, but the ones below
// must have the right JSON types.
type hydraRequest struct {
	Session struct {
		IDToken struct {
			IDTokenClaims struct {
				Ext json.RawMessage `json:"ext"`
			} `json:"id_token_claims"`
			ExpiresAt map[string]string `json:"expires_at"`
			Subject   string            `json:"subject"`
		} `json:"id_token"`
		Extra map[string]json.RawMessage `json:"extra"`
	} `json:"session"`
	Request struct {
		ClientID        string   `json:"client_id"`
		GrantedScopes   []string `json:"granted_scopes"`
		GrantedAudience []string `json:"granted_audience"`
	} `json:"request"`
}

// hydraResponse is the hook's answer. Hydra replaces the access token's
// extra claims with AccessToken and the ID token's with IDToken.
type hydraResponse struct {
	Session struct {
		AccessToken map[string]json.RawMessage `json:"access_token"`
		IDToken     json.RawMessage            `json:"id_token"`
	} `json:"session"`
}

// errNoExpiry: Hydra did not say when the access token expires.
var errNoExpiry = fmt.Errorf("%w: no session.id_token.expires_at.access_token", ErrInvalidSubject)

// parseHydra turns a decoded Hydra request into a Subject and the ID token
// claims to echo. Its errors are the request's fault (403).
func parseHydra(req *hydraRequest) (Subject, json.RawMessage, error) {
	s := Subject{
		Sub:      req.Session.IDToken.Subject,
		ClientID: req.Request.ClientID,
		Scopes:   req.Request.GrantedScopes,
		Audience: req.Request.GrantedAudience,
	}
	ext := req.Session.IDToken.IDTokenClaims.Ext
	var extClaims map[string]json.RawMessage
	if len(ext) == 0 || string(ext) == "null" {
		ext = json.RawMessage(`{}`)
	} else if err := json.Unmarshal(ext, &extClaims); err != nil {
		return s, nil, fmt.Errorf("%w: session.id_token.id_token_claims.ext is not an object", ErrInvalidSubject)
	}
	at, ok := req.Session.IDToken.ExpiresAt["access_token"]
	if !ok || at == "" {
		return s, nil, errNoExpiry
	}
	exp, err := time.Parse(time.RFC3339Nano, at)
	if err != nil || exp.Unix() <= 0 {
		return s, nil, fmt.Errorf("%w: session.id_token.expires_at.access_token is not an RFC 3339 time", ErrInvalidSubject)
	}
	s.Exp = exp
	s.Claims = make(map[string]any, len(extClaims)+len(req.Session.Extra))
	for k, v := range extClaims {
		s.Claims[k] = v
	}
	for k, v := range req.Session.Extra {
		s.Claims[k] = v
	}
	return s, ext, nil
}

// hydra serves POST /hooks/hydra: Ory Hydra v2's token hook, called for
// every grant, refresh included. Deterministic failures are 403, so that
// Hydra denies the token at once instead of retrying.
func (h *hookServer) hydra(w http.ResponseWriter, r *http.Request) {
	const endpoint = "hydra"
	m, body, ctx, cancel, ok := h.request(w, r, endpoint)
	if !ok {
		return
	}
	defer cancel()
	var req hydraRequest
	if err := decodeStrict(body, &req); err != nil {
		h.fail(w, r, endpoint, http.StatusBadRequest, reasonBadRequest, "invalid_request", err.Error(), nil)
		return
	}
	s, idExt, err := parseHydra(&req)
	if err != nil {
		h.fail(w, r, endpoint, http.StatusForbidden, reasonDenied, "access_denied", describe(err), nil)
		return
	}
	res, err := m.Mint(ctx, s)
	if err != nil {
		h.mintFailed(w, r, endpoint, http.StatusForbidden, "access_denied", err)
		return
	}
	b, err := hydraAnswer(req.Session.Extra, m.Claim(), res.Tokens, idExt)
	h.answerJSON(w, r, endpoint, b, err)
}

// hydraAnswer encodes the hook's answer (hydraResponse) as encoding/json
// would, members sorted, but without re-validating the embedded map (mint
// wrote it, compact, a few KiB per answer): session.access_token is extra
// with claim set to tokens (the stale map of a previous token replaced),
// session.id_token is idExt. The other values are compacted; one that is
// not JSON is an error (decoding validated them all).
func hydraAnswer(extra map[string]json.RawMessage, claim string, tokens map[string]string, idExt json.RawMessage) ([]byte, error) {
	names := make([]string, 0, len(extra)+1)
	n := mapJSONLen(tokens) + len(idExt) + 64
	for k, v := range extra {
		if k != claim {
			names = append(names, k)
			n += len(k) + len(v) + 4
		}
	}
	names = append(names, claim)
	sort.Strings(names)
	b := bytes.NewBuffer(make([]byte, 0, n+len(claim)))
	b.WriteString(`{"session":{"access_token":{`)
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(jsonString(k))
		b.WriteByte(':')
		if k == claim {
			b.Write(appendMapJSON(b.AvailableBuffer(), tokens))
		} else if err := json.Compact(b, extra[k]); err != nil {
			return nil, err
		}
	}
	b.WriteString(`},"id_token":`)
	if err := json.Compact(b, idExt); err != nil {
		return nil, err
	}
	b.WriteString(`}}`)
	return b.Bytes(), nil
}
