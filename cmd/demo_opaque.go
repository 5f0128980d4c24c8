package cmd

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// opaqueIssuer is the demo's stand-in for an issuer in opaque mode (Ory
// Hydra with strategies.access_token: opaque): it hands clients short
// random tokens and answers RFC 7662 introspection with the claims,
// embedded map included, that a JWT would have carried.
type opaqueIssuer struct {
	mu     sync.Mutex
	tokens map[string]map[string]any
}

// issue stores claims under a new opaque token and returns it.
func (o *opaqueIssuer) issue(claims map[string]any) string {
	tok := demoOpaquePrefix + randomHex(24)
	o.mu.Lock()
	o.tokens[tok] = claims
	o.mu.Unlock()
	return tok
}

// ServeHTTP answers POST token=... as RFC 7662 does: the claims with
// active: true and token_use: access_token, or only active: false.
func (o *opaqueIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	tok := r.PostForm.Get("token")
	o.mu.Lock()
	claims, ok := o.tokens[tok]
	o.mu.Unlock()
	answer := map[string]any{"active": false}
	if ok && strings.HasPrefix(tok, demoOpaquePrefix) {
		if exp, _ := claims["exp"].(int64); exp > time.Now().Unix() {
			answer = map[string]any{"active": true, "token_use": "access_token", "token_type": "Bearer"}
			for k, v := range claims {
				answer[k] = v
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(answer)
}
