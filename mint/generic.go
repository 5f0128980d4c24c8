package mint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// genericFields are the members a generic hook request may have.
var genericFields = map[string]bool{
	"sub": true, "client_id": true, "scope": true, "audience": true, "claims": true, "exp": true,
}

// genericRequest is the generic hook's grammar:
//
//	{"sub", "client_id", "scope": "a b" or ["a", "b"], "audience": [...],
//	 "claims": {...}, "exp": NumericDate}
type genericRequest struct {
	Sub      string                     `json:"sub"`
	ClientID string                     `json:"client_id"`
	Scope    json.RawMessage            `json:"scope"`
	Audience json.RawMessage            `json:"audience"`
	Claims   map[string]json.RawMessage `json:"claims"`
	Exp      json.RawMessage            `json:"exp"`
}

// genericResponse is the generic hook's answer.
type genericResponse struct {
	Claim  string          `json:"claim"`
	Tokens json.RawMessage `json:"tokens"`
}

// parseGeneric decodes and checks a generic hook request. Every error is
// the request's fault (400).
func parseGeneric(body []byte) (Subject, error) {
	var members map[string]json.RawMessage
	if err := decodeStrict(body, &members); err != nil {
		return Subject{}, err
	}
	for k := range members {
		if !genericFields[k] {
			return Subject{}, fmt.Errorf("unknown member %s", jsonString(k))
		}
	}
	var req genericRequest
	if err := decodeStrict(body, &req); err != nil {
		return Subject{}, err
	}
	if req.Sub == "" {
		return Subject{}, errors.New("sub: a non-empty string is required")
	}
	if req.ClientID == "" {
		return Subject{}, errors.New("client_id: a non-empty string is required")
	}
	scopes, err := stringOrList(req.Scope, true)
	if err != nil {
		return Subject{}, fmt.Errorf("scope: %w", err)
	}
	aud, err := stringOrList(req.Audience, false)
	if err != nil {
		return Subject{}, fmt.Errorf("audience: %w", err)
	}
	exp, err := numericDate(req.Exp)
	if err != nil {
		return Subject{}, fmt.Errorf("exp: %w", err)
	}
	s := Subject{Sub: req.Sub, ClientID: req.ClientID, Scopes: scopes, Audience: aud, Exp: exp}
	if len(req.Claims) > 0 {
		s.Claims = make(map[string]any, len(req.Claims))
		for k, v := range req.Claims {
			s.Claims[k] = v
		}
	}
	return s, nil
}

// stringOrList reads a JSON string or array of strings; a string is split on
// spaces when split is set (a scope string), else it is one element. Absent
// or null is empty.
func stringOrList(raw json.RawMessage, split bool) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("invalid string")
		}
		if split {
			return strings.Fields(s), nil
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("want a string or an array of strings")
	}
	return list, nil
}

// numericDate reads a required JSON number of seconds since the epoch
// (RFC 7519 NumericDate), floored.
func numericDate(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, errors.New("a NumericDate is required")
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return time.Time{}, errors.New("want a JSON number")
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f <= 0 || f > math.MaxInt32*4 {
		return time.Time{}, errors.New("want a positive NumericDate")
	}
	return time.Unix(int64(math.Floor(f)), 0), nil
}

// generic serves POST /hooks/generic when hook.generic is set: for any
// issuer that can call a webhook. Every failure that is the request's fault
// is a 400.
func (h *hookServer) generic(w http.ResponseWriter, r *http.Request) {
	const endpoint = "generic"
	m := r.Context().Value(minterKey{}).(*Minter)
	if !m.cat.Hook.Generic {
		h.fail(w, r, endpoint, http.StatusNotFound, reasonBadRequest, "not_found", "the generic hook is not enabled", nil)
		return
	}
	m, body, ctx, cancel, ok := h.request(w, r, endpoint)
	if !ok {
		return
	}
	defer cancel()
	s, err := parseGeneric(body)
	if err != nil {
		h.fail(w, r, endpoint, http.StatusBadRequest, reasonBadRequest, "invalid_request", err.Error(), nil)
		return
	}
	res, err := m.Mint(ctx, s)
	if err != nil {
		h.mintFailed(w, r, endpoint, http.StatusBadRequest, "invalid_request", err)
		return
	}
	h.metrics.hookRequest(endpoint, reasonOK)
	writeJSON(w, http.StatusOK, genericResponse{Claim: res.Claim, Tokens: res.MapJSON()})
}
