package cmd

import (
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/embedtoken/embedtoken/unwrap"
)

// inspectNode is one token of `inspect --json`. Times are NumericDates.
type inspectNode struct {
	Name      string                     `json:"name,omitempty"`
	Bytes     int                        `json:"bytes"`
	Error     string                     `json:"error,omitempty"`
	Alg       string                     `json:"alg,omitempty"`
	Kid       string                     `json:"kid,omitempty"`
	Typ       string                     `json:"typ,omitempty"`
	Issuer    string                     `json:"iss,omitempty"`
	Subject   string                     `json:"sub,omitempty"`
	ClientID  string                     `json:"client_id,omitempty"`
	Audience  []string                   `json:"aud,omitempty"`
	Scope     string                     `json:"scope,omitempty"`
	ID        string                     `json:"jti,omitempty"`
	Expiry    int64                      `json:"exp,omitempty"`
	NotBefore int64                      `json:"nbf,omitempty"`
	IssuedAt  int64                      `json:"iat,omitempty"`
	Expired   bool                       `json:"expired,omitempty"`
	Claims    map[string]json.RawMessage `json:"claims,omitempty"`
	Signature string                     `json:"signature,omitempty"` // "verified", "not verified: why", "not checked"
	Embedded  *inspectEmbedded           `json:"embedded,omitempty"`
}

type inspectEmbedded struct {
	Claim  string         `json:"claim"`
	Bytes  int            `json:"bytes"`
	Tokens []*inspectNode `json:"tokens"`
}

// writeTokenJSON prints n as JSON; it reports whether a signature check or
// an embedded token failed, as writeTokenTree does.
func writeTokenJSON(w io.Writer, n *unwrap.Node, now time.Time) (bool, error) {
	j, failed := toInspectNode(n, now)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return failed, enc.Encode(j)
}

func toInspectNode(n *unwrap.Node, now time.Time) (*inspectNode, bool) {
	j := &inspectNode{Name: n.Name, Bytes: n.Bytes}
	if n.Err != nil {
		j.Error = userText(n.Err)
		return j, true
	}
	j.Alg, j.Kid, j.Typ = n.Alg, n.Kid, n.Typ
	j.Issuer, j.Subject, j.ClientID, j.ID = n.Issuer, n.Subject, n.ClientID, n.ID
	j.Audience, j.Scope, j.Claims = n.Audience, strings.Join(n.Scopes, " "), n.Claims
	j.Expiry, j.NotBefore, j.IssuedAt = unixOrZero(n.Expiry), unixOrZero(n.NotBefore), unixOrZero(n.IssuedAt)
	j.Expired = !n.Expiry.IsZero() && !now.Before(n.Expiry)
	failed := false
	switch {
	case !n.Checked:
		j.Signature = "not checked"
	case n.Verified:
		j.Signature = "verified"
	default:
		j.Signature = "not verified: " + userText(n.VerifyErr)
		failed = true
	}
	if n.ClaimPath != nil {
		j.Embedded = &inspectEmbedded{Claim: strings.Join(n.ClaimPath, "."), Bytes: n.EmbeddedBytes, Tokens: []*inspectNode{}}
		for _, c := range n.Children {
			cj, f := toInspectNode(c, now)
			failed = failed || f
			j.Embedded.Tokens = append(j.Embedded.Tokens, cj)
		}
	}
	return j, failed
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
