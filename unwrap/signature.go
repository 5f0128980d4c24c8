package unwrap

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"math/big"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// checkSignature finds the keys (by kid, from ks only) and verifies the
// signature of p's signing input with them, allowing alg alone: one that
// verifies is enough.
func (v *Verifier) checkSignature(ctx context.Context, p *parsed, ks *keySet, alg jose.SignatureAlgorithm) *Failure {
	var buf [2]*jose.JSONWebKey
	keys, err := ks.key(ctx, p.header.Kid, alg, buf[:0])
	if err != nil {
		switch {
		case errors.Is(err, errKeysUnavailable):
			return unavailable(ReasonKeysUnavailable, err)
		case errors.Is(err, errAmbiguousKey):
			return invalid(ReasonAmbiguousKey, err)
		case errors.Is(err, errKeyAlg):
			return invalid(ReasonKeyAlg, err)
		}
		return invalid(ReasonUnknownKid, err)
	}
	for _, key := range keys {
		err = verifySignature(key.Key, alg, p.signingInput, p.sig)
		if err == nil {
			return nil
		}
		if errors.Is(err, errBase64) {
			return invalid(ReasonMalformed, err)
		}
	}
	return invalid(ReasonSignature, err)
}

// errSignature is a signature that does not verify (or a key that does
// not fit the algorithm). It says no more, so that it is no oracle.
var errSignature = errors.New("signature does not verify")

// verifySignature checks sigB64, the base64url signature of a compact JWS,
// over signingInput (its header and payload as sent) with key, for alg
// only: what go-jose's Verify does, without parsing the token again. The
// key's type must fit alg; an ECDSA key's curve must be alg's; an ECDSA
// signature is r||s of the curve's size (RFC 7518 3.4). A signature that is
// not strict base64url is errBase64.
func verifySignature(key any, alg jose.SignatureAlgorithm, signingInput, sigB64 string) error {
	var buf [512]byte
	sig := buf[:0]
	if n := b64url.DecodedLen(len(sigB64)); n > len(buf) {
		sig = make([]byte, 0, n)
	}
	sig, err := b64url.AppendDecode(sig, bytesOf(sigB64))
	if err != nil {
		return errBase64
	}
	msg := bytesOf(signingInput)
	switch k := key.(type) {
	case ed25519.PublicKey:
		if alg != jose.EdDSA || len(k) != ed25519.PublicKeySize || !ed25519.Verify(k, msg, sig) {
			return errSignature
		}
		return nil
	case *rsa.PublicKey:
		h, digest := hashFor(alg, msg)
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512:
			err = rsa.VerifyPKCS1v15(k, h, digest, sig)
		case jose.PS256, jose.PS384, jose.PS512:
			err = rsa.VerifyPSS(k, h, digest, sig, nil)
		default:
			return errSignature
		}
		if err != nil {
			return errSignature
		}
		return nil
	case *ecdsa.PublicKey:
		var curve elliptic.Curve
		size := 0
		switch alg {
		case jose.ES256:
			curve, size = elliptic.P256(), 32
		case jose.ES384:
			curve, size = elliptic.P384(), 48
		case jose.ES512:
			curve, size = elliptic.P521(), 66
		default:
			return errSignature
		}
		if k.Curve != curve || len(sig) != 2*size {
			return errSignature
		}
		_, digest := hashFor(alg, msg)
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errSignature
		}
		return nil
	}
	return errSignature
}

// hashFor hashes msg with the hash of alg (SHA-256, -384 or -512 by its
// last three digits).
func hashFor(alg jose.SignatureAlgorithm, msg []byte) (crypto.Hash, []byte) {
	switch {
	case strings.HasSuffix(string(alg), "384"):
		d := sha512.Sum384(msg)
		return crypto.SHA384, d[:]
	case strings.HasSuffix(string(alg), "512"):
		d := sha512.Sum512(msg)
		return crypto.SHA512, d[:]
	}
	d := sha256.Sum256(msg)
	return crypto.SHA256, d[:]
}
