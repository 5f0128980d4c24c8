package mint

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Okta's token inline hook (custom authorization servers), as documented at
// https://developer.okta.com/docs/reference/token-hook/ and
// https://developer.okta.com/docs/concepts/inline-hooks/:
//   - Okta POSTs {"eventType": "com.okta.oauth2.tokens.transform", "data":
//     {"context": {...}, "identity": {...}, "access": {"claims", "token":
//     {"lifetime": {"expiration": seconds}}, "scopes": {name: {"action"}}}}};
//   - a 200 answer {"commands": [{"type": "com.okta.access.patch", "value":
//     [{"op": "add", "path": "/claims/<name>", "value": ...}]}]} adds a claim;
//   - a 200 answer {"error": {"errorSummary": "..."}} makes Okta deny the
//     token (server_error to the client). Any other status, a timeout (3 s,
//     one retry) or a command Okta cannot apply makes Okta issue the token
//     UNMODIFIED: that is Okta's failure policy and no hook can change it. A
//     token without the embedded map then gets no inner token at any
//     sidecar (401 renew, or an exchange), so it is never broader.
// So every failure this endpoint can see is answered 200 with an error
// object.

// oktaEventType is the only eventType the endpoint accepts.
const oktaEventType = "com.okta.oauth2.tokens.transform"

// OktaExpirySlack is taken off the expiry Okta implies: its lifetime is
// relative (seconds from when it minted the token), the hook answers up to
// Okta's 3 s timeout later and Okta retries once, so inner tokens end this
// much before now + lifetime and never after the outer token.
const OktaExpirySlack = 10 * time.Second

// oktaScope is one member of data.access.scopes.
type oktaScope struct {
	Action string `json:"action"`
}

// oktaLifetime is a token's lifetime object.
type oktaLifetime struct {
	Expiration *int64 `json:"expiration"`
}

// oktaRequest is the part of a token inline hook request the hook reads.
// Okta sends many more fields; they are ignored, but those below must have
// the right JSON types.
type oktaRequest struct {
	EventType string `json:"eventType"`
	Data      struct {
		Context struct {
			Protocol struct {
				Client struct {
					ID string `json:"id"`
				} `json:"client"`
			} `json:"protocol"`
			User struct {
				Profile map[string]json.RawMessage `json:"profile"`
			} `json:"user"`
		} `json:"context"`
		Identity struct {
			Claims map[string]json.RawMessage `json:"claims"`
		} `json:"identity"`
		Access *struct {
			Claims map[string]json.RawMessage `json:"claims"`
			Token  struct {
				Lifetime oktaLifetime `json:"lifetime"`
			} `json:"token"`
			Lifetime oktaLifetime         `json:"lifetime"`
			Scopes   map[string]oktaScope `json:"scopes"`
		} `json:"access"`
	} `json:"data"`
}

// oktaCommand is one command of the answer.
type oktaCommand struct {
	Type  string   `json:"type"`
	Value []oktaOp `json:"value"`
}

// oktaOp is one JSON Patch-like operation of a command.
type oktaOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// oktaAnswer is the hook's answer: commands, or an error object.
type oktaAnswer struct {
	Commands []oktaCommand `json:"commands,omitempty"`
	Error    *oktaError    `json:"error,omitempty"`
}

// oktaError is Okta's error object.
type oktaError struct {
	ErrorSummary string `json:"errorSummary"`
}

// parseOkta turns a decoded token inline hook request into a Subject. now
// is the minter's clock. Its errors are the request's fault.
func parseOkta(req *oktaRequest, now time.Time) (Subject, error) {
	if req.EventType != oktaEventType {
		return Subject{}, fmt.Errorf("%w: eventType is not %s", ErrInvalidSubject, oktaEventType)
	}
	at := req.Data.Access
	if at == nil {
		// Only an ID token is being minted: Okta refuses commands for an
		// access token it does not mint.
		return Subject{}, errNoOktaAccess
	}
	var s Subject
	if err := claimString(at.Claims, "sub", &s.Sub); err != nil {
		return s, err
	}
	s.ClientID = req.Data.Context.Protocol.Client.ID
	var cid string
	if err := claimString(at.Claims, "cid", &cid); err == nil {
		if s.ClientID != "" && s.ClientID != cid {
			return s, fmt.Errorf("%w: data.access.claims.cid differs from data.context.protocol.client.id", ErrInvalidSubject)
		}
		s.ClientID = cid
	}
	if s.Sub == "" || s.ClientID == "" {
		return s, fmt.Errorf("%w: the access token has no sub or no client (cid)", ErrInvalidSubject)
	}
	for name, sc := range at.Scopes {
		if sc.Action == "GRANT" {
			s.Scopes = append(s.Scopes, name)
		}
	}
	if aud, ok := at.Claims["aud"]; ok {
		list, err := stringOrList(aud, false)
		if err != nil {
			return s, fmt.Errorf("%w: data.access.claims.aud: %v", ErrInvalidSubject, err)
		}
		s.Audience = list
	}
	lifetime := at.Token.Lifetime.Expiration
	if lifetime == nil {
		lifetime = at.Lifetime.Expiration
	}
	if lifetime == nil || *lifetime <= 0 || *lifetime > 10*365*24*3600 {
		return s, fmt.Errorf("%w: data.access.token.lifetime.expiration: a positive number of seconds is required", ErrInvalidSubject)
	}
	s.Exp = now.Add(time.Duration(*lifetime)*time.Second - OktaExpirySlack)
	// Profile claims: the user's profile, under the ID token's claims,
	// under the access token's own.
	s.Claims = make(map[string]any)
	for _, m := range []map[string]json.RawMessage{req.Data.Context.User.Profile, req.Data.Identity.Claims, at.Claims} {
		for k, v := range m {
			s.Claims[k] = v
		}
	}
	return s, nil
}

// errNoOktaAccess: the request mints no access token.
var errNoOktaAccess = fmt.Errorf("%w: no data.access: only an access token carries the embedded map", ErrInvalidSubject)

// claimString reads claims[name] as a string into dst; absent is an error.
func claimString(claims map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := claims[name]
	if !ok {
		return fmt.Errorf("%w: data.access.claims.%s is absent", ErrInvalidSubject, name)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%w: data.access.claims.%s is not a string", ErrInvalidSubject, name)
	}
	return nil
}

// okta serves POST /hooks/okta when hook.okta is set: Okta's token inline
// hook. Its answer is always 200 (see above): commands adding the embedded
// map to the access token, or Okta's error object so that Okta denies the
// token.
func (h *hookServer) okta(w http.ResponseWriter, r *http.Request) {
	const endpoint = "okta"
	m := r.Context().Value(minterKey{}).(*Minter)
	if !m.cat.Hook.Okta {
		h.fail(w, r, endpoint, http.StatusNotFound, reasonBadRequest, "not_found", "the okta hook is not enabled", nil)
		return
	}
	m, body, ctx, cancel, ok := h.request(w, r, endpoint)
	if !ok {
		return
	}
	defer cancel()
	var req oktaRequest
	if err := decodeStrict(body, &req); err != nil {
		h.fail(w, r, endpoint, http.StatusBadRequest, reasonBadRequest, "invalid_request", err.Error(), nil)
		return
	}
	s, err := parseOkta(&req, m.now())
	if err != nil {
		h.fail(w, r, endpoint, http.StatusForbidden, reasonDenied, "access_denied", describe(err), nil)
		return
	}
	res, err := m.Mint(ctx, s)
	if err != nil {
		h.mintFailed(w, r, endpoint, http.StatusForbidden, "access_denied", err)
		return
	}
	ans := oktaAnswer{Commands: []oktaCommand{{
		Type:  "com.okta.access.patch",
		Value: []oktaOp{{Op: "add", Path: "/claims/" + m.Claim(), Value: res.MapJSON()}},
	}}}
	h.answer(w, r, endpoint, ans)
}

// writeOktaError answers a failure the way Okta denies a token: 200 with
// {"error": {"errorSummary": desc}} (Okta returns server_error with desc as
// error_description to the client; desc never holds input values).
func writeOktaError(w http.ResponseWriter, desc string) {
	writeJSON(w, http.StatusOK, oktaAnswer{Error: &oktaError{ErrorSummary: "embedtoken: " + desc}})
}
