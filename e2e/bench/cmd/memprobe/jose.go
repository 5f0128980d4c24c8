//go:build jose

package main

import (
	"encoding/json"

	"github.com/go-jose/go-jose/v4"
)

// jose: a key set decoded and a compact JWS parsed.
func init() {
	extras = append(extras, func() {
		var ks jose.JSONWebKeySet
		_ = json.Unmarshal([]byte("{}"), &ks)
		_, _ = jose.ParseSigned("a.b.c", []jose.SignatureAlgorithm{jose.RS256})
	})
}
