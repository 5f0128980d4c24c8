package mint

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/go-jose/go-jose/v4"
)

// edSigner signs compact JWS with an in-memory Ed25519 key directly, the
// protected header's base64url segment computed once: go-jose marshals the
// header, encodes the payload twice (signing input, then serialization) and
// builds intermediate objects for every token, which cost about as much as a
// third of the signature itself. The output is byte for byte what go-jose
// produces (the header segment is taken from a go-jose signature, and
// Ed25519 is deterministic).
type edSigner struct {
	key    ed25519.PrivateKey
	header string // base64url of the protected header, as go-jose writes it
}

// newEdSigner returns the direct signer for key, whose go-jose signer is
// js, or nil when its output would not be go-jose's byte for byte or key is
// not an in-memory Ed25519 key (KMS and HSM keys,
// ECDSA and RSA keys keep going through go-jose: their signatures dwarf
// its overhead).
func newEdSigner(js jose.Signer, alg jose.SignatureAlgorithm, key any) (*edSigner, error) {
	k, ok := key.(ed25519.PrivateKey)
	if !ok || alg != jose.EdDSA {
		return nil, nil
	}
	if len(k) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 private key of %d bytes", len(k))
	}
	probe := []byte(`{}`)
	jws, err := js.Sign(probe)
	if err != nil {
		return nil, err
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return nil, err
	}
	header, _, ok := strings.Cut(tok, ".")
	if !ok || header == "" {
		return nil, errors.New("go-jose signature without a header segment")
	}
	s := &edSigner{key: k, header: header}
	if got := s.sign(probe); got != tok {
		// A go-jose that serializes differently: keep signing through it
		// (TestEdSignerMatchesGoJose fails, so the difference is looked at).
		return nil, nil
	}
	return s, nil
}

// sign returns the compact JWS of payload: header.payload.signature, each
// base64url without padding, built in one buffer.
func (s *edSigner) sign(payload []byte) string {
	enc := base64.RawURLEncoding
	n := len(s.header) + 1 + enc.EncodedLen(len(payload))
	b := make([]byte, n+1+enc.EncodedLen(ed25519.SignatureSize))
	copy(b, s.header)
	b[len(s.header)] = '.'
	enc.Encode(b[len(s.header)+1:n], payload)
	sig := ed25519.Sign(s.key, b[:n])
	b[n] = '.'
	enc.Encode(b[n+1:], sig)
	// b is never written again: the token is a view of it, not a copy.
	return unsafe.String(&b[0], len(b))
}
