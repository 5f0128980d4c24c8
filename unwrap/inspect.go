package unwrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxInspectDepth bounds the nesting Inspect follows.
const maxInspectDepth = 8

// Node is one token decoded by Inspect, with the tokens embedded in it.
// Nothing in it is trusted unless Verified is true.
type Node struct {
	// Name is the API name the token was embedded under; empty at the root.
	Name string
	// Bytes is the token's length.
	Bytes                       int
	Alg, Kid, Typ               string
	Issuer, Subject, ClientID   string
	ID                          string
	Audience                    []string
	Scopes                      []string
	Expiry, NotBefore, IssuedAt time.Time
	// ClaimPath is where the embedded map was found, or nil.
	ClaimPath []string
	// EmbeddedBytes is the JSON size of the embedded map.
	EmbeddedBytes int
	// Claims are the other claims (email, tenant, act...): every member
	// but the registered ones above and the embedded map, as JSON.
	Claims map[string]json.RawMessage
	// Children are the embedded tokens, sorted by name.
	Children []*Node
	// Checked is true when a key set was given; then Verified says whether
	// the signature verified, and VerifyErr why not.
	Checked   bool
	Verified  bool
	VerifyErr error
	// Err is why an embedded token could not be decoded (the root's error
	// is returned by Inspect instead).
	Err error
}

// InspectOptions tune Inspect. A nil *InspectOptions is the zero value.
type InspectOptions struct {
	// JWKS are JSON Web Key Sets (the issuer's, the minter's); when set,
	// every token's signature is checked against their keys (by kid;
	// without kid, the one usable key).
	JWKS [][]byte
	// ClaimPaths are the paths tried for the embedded map. If empty:
	// embedded_tokens, ext.embedded_tokens, then any object member (at the
	// top level or under ext) whose values all look like compact JWS.
	ClaimPaths [][]string
}

// ErrMalformed is returned by Inspect for a token it cannot decode.
var ErrMalformed = errors.New("unwrap: malformed token")

// Inspect decodes token and the tokens embedded in it, recursively,
// without trusting any of them (unless opts.JWKS is given, signatures are
// not checked). The decoding is as strict as verification: duplicate
// members and wrong claim types are errors.
func Inspect(token string, opts *InspectOptions) (*Node, error) {
	if opts == nil {
		opts = &InspectOptions{}
	}
	var keys []jose.JSONWebKey
	for i, b := range opts.JWKS {
		ks, err := ParseJWKS(b)
		if err != nil {
			return nil, fmt.Errorf("key set %d: %w", i+1, err)
		}
		keys = append(keys, ks...)
	}
	n, err := inspect("", strings.TrimSpace(token), opts, keys, 0)
	if err != nil {
		return nil, err
	}
	return n, nil
}

func inspect(name, token string, opts *InspectOptions, keys []jose.JSONWebKey, depth int) (*Node, error) {
	n := &Node{Name: name, Bytes: len(token)}
	p := new(parsed)
	if f := parseToken(token, p); f != nil {
		return n, fmt.Errorf("%w: %s", ErrMalformed, describe(f))
	}
	c := &p.claims
	n.Alg, n.Kid, n.Typ = p.header.Alg, p.header.Kid, p.header.Typ
	n.Issuer, n.Subject, n.ClientID, n.ID = c.Issuer, c.Subject, c.ClientID, c.ID
	n.Audience, n.Scopes = c.Audience, c.Scopes
	n.Expiry, n.NotBefore, n.IssuedAt = c.Expiry, c.NotBefore, c.IssuedAt
	if keys != nil {
		n.Checked = true
		n.VerifyErr = verifyWith(p, keys)
		n.Verified = n.VerifyErr == nil
	}
	path, m, size, err := findEmbedded(p.payload, opts.ClaimPaths)
	if err != nil {
		return n, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	n.ClaimPath, n.EmbeddedBytes = path, size
	n.Claims = otherClaims(p.payload, path)
	if depth >= maxInspectDepth {
		return n, nil
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		child, err := inspect(k, m[k], opts, keys, depth+1)
		if err != nil {
			child.Err = err
		}
		n.Children = append(n.Children, child)
	}
	return n, nil
}

// describe is a human text for a decoding failure.
func describe(f *Failure) string {
	switch f.Reason {
	case ReasonDuplicateMember:
		return "duplicate JSON member names"
	case ReasonClaimType:
		return "a registered claim has the wrong JSON type"
	case ReasonCrit:
		return "crit header"
	}
	if f.Err != nil {
		return f.Err.Error()
	}
	return string(f.Reason)
}

// verifyWith checks the token's signature with keys.
func verifyWith(p *parsed, keys []jose.JSONWebKey) error {
	alg := jose.SignatureAlgorithm(p.header.Alg)
	ks := &keySet{}
	ks.cur.Store(&keyIndex{keys: keys})
	found, err := ks.find(p.header.Kid, alg)
	if err != nil {
		return err
	}
	for _, key := range found {
		err = verifySignature(key.Key, alg, p.signingInput, p.sig)
		if err == nil {
			return nil
		}
		if errors.Is(err, errBase64) {
			return err
		}
	}
	return errors.New("bad signature")
}

var defaultClaimPaths = [][]string{{"embedded_tokens"}, {"ext", "embedded_tokens"}}

// findEmbedded locates the embedded map.
func findEmbedded(payload []byte, paths [][]string) ([]string, map[string]string, int, error) {
	if len(paths) == 0 {
		paths = defaultClaimPaths
	}
	for _, p := range paths {
		m, err := embedded(payload, p)
		if err != nil {
			return p, nil, 0, fmt.Errorf("claim %s: %w", strings.Join(p, "."), err)
		}
		if m != nil {
			return p, m, jsonSize(m), nil
		}
	}
	if len(paths) > 0 && !slices.EqualFunc(paths, defaultClaimPaths, slices.Equal) {
		return nil, nil, 0, nil
	}
	// Any object of JWS-looking strings, at the top level or under ext.
	var top map[string]json.RawMessage
	if json.Unmarshal(payload, &top) != nil {
		return nil, nil, 0, nil
	}
	try := func(prefix []string, obj map[string]json.RawMessage) ([]string, map[string]string) {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var m map[string]string
			if json.Unmarshal(obj[k], &m) != nil || len(m) == 0 {
				continue
			}
			all := true
			for _, v := range m {
				all = all && looksLikeJWS(v)
			}
			if all {
				return append(slices.Clone(prefix), k), m
			}
		}
		return nil, nil
	}
	if p, m := try(nil, top); m != nil {
		return p, m, jsonSize(m), nil
	}
	var ext map[string]json.RawMessage
	if json.Unmarshal(top["ext"], &ext) == nil {
		if p, m := try([]string{"ext"}, ext); m != nil {
			return p, m, jsonSize(m), nil
		}
	}
	return nil, nil, 0, nil
}

func jsonSize(m map[string]string) int {
	b, _ := json.Marshal(m)
	return len(b)
}
