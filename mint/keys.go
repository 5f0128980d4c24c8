package mint

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"

	"github.com/embedtoken/embedtoken/catalog"
)

// Errors of the key ring.
var (
	// ErrNoActiveKey means the minter block names no active key, or the
	// active key's private key was not loaded.
	ErrNoActiveKey = errors.New("mint: no usable active signing key")
)

// typATJWT is the typ header of every token mint signs (RFC 9068).
const typATJWT = "at+jwt"

// keyRing holds the signer of the active key and the published JWKS.
type keyRing struct {
	kid    string
	alg    jose.SignatureAlgorithm
	signer jose.Signer
	ed     *edSigner // the direct signer of an in-memory Ed25519 key, else nil
	jwks   []byte    // the JSON of the public key set, active and retired keys
}

// sign returns the compact JWS of payload with the active key.
func (k *keyRing) sign(payload []byte) (string, error) {
	if k.ed != nil {
		return k.ed.sign(payload), nil
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// newKeyRing builds the active key's signer and the JWKS of every declared
// key whose public key is known.
func newKeyRing(m *catalog.Minter) (*keyRing, error) {
	active := m.Key(m.ActiveKey)
	if m.ActiveKey == "" || active == nil || active.Private == nil {
		return nil, fmt.Errorf("%w (active_key %q)", ErrNoActiveKey, m.ActiveKey)
	}
	signer, err := newSigner(active.ID, active.Algorithm, active.Private)
	if err != nil {
		return nil, fmt.Errorf("mint: signing key %q: %w", active.ID, err)
	}
	ed, err := newEdSigner(signer, active.Algorithm, active.Private)
	if err != nil {
		return nil, fmt.Errorf("mint: signing key %q: %w", active.ID, err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range m.SigningKeys {
		pub := k.Public
		if pub.Key == nil && k.Private != nil {
			pub = jose.JSONWebKey{Key: k.Private.Public()}
		}
		if pub.Key == nil {
			continue
		}
		pub.KeyID = k.ID
		pub.Algorithm = string(k.Algorithm)
		pub.Use = "sig"
		pub.Certificates = nil
		if !pub.IsPublic() {
			pub = pub.Public()
		}
		if !pub.Valid() {
			return nil, fmt.Errorf("mint: signing key %q: invalid public key", k.ID)
		}
		set.Keys = append(set.Keys, pub)
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("mint: marshal jwks: %w", err)
	}
	return &keyRing{kid: active.ID, alg: active.Algorithm, signer: signer, ed: ed, jwks: jwks}, nil
}

// newSigner returns a go-jose signer for key whose protected header is
// {"alg", "kid", "typ": "at+jwt"}. Keys go-jose knows natively are used
// directly; any other crypto.Signer (a KMS, an HSM) goes through
// cryptosigner.
func newSigner(kid string, alg jose.SignatureAlgorithm, key crypto.Signer) (jose.Signer, error) {
	var k any
	switch key := key.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey:
		k = key
	default:
		k = cryptosigner.Opaque(key)
	}
	opts := (&jose.SignerOptions{}).WithType(typATJWT)
	return jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, opts)
}
