package catalog

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"

	"github.com/go-jose/go-jose/v4"
)

// MinRSABits is the smallest RSA key accepted for signing.
const MinRSABits = 2048

// ParsePrivateKeyPEM parses a PKCS#8 PEM private key, as keygen writes.
// Errors never include key material.
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\" (PKCS#8, as keygen writes)", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a valid PKCS#8 private key")
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", k)
	}
	return s, nil
}

// CheckKeyAlg reports whether key can sign with alg: an Ed25519 key for
// EdDSA, a P-256 key for ES256 (P-384, P-521 for ES384, ES512), an RSA key
// of at least MinRSABits for RS* and PS*.
func CheckKeyAlg(alg jose.SignatureAlgorithm, key crypto.Signer) error {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		if alg != jose.EdDSA {
			return fmt.Errorf("an Ed25519 key signs EdDSA, not %s", alg)
		}
	case *ecdsa.PrivateKey:
		want := map[jose.SignatureAlgorithm]elliptic.Curve{jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384(), jose.ES512: elliptic.P521()}[alg]
		if want == nil || k.Curve != want {
			return fmt.Errorf("an ECDSA %s key cannot sign %s", k.Curve.Params().Name, alg)
		}
	case *rsa.PrivateKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		default:
			return fmt.Errorf("an RSA key cannot sign %s", alg)
		}
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("the RSA key has %d bits; at least %d are required", k.N.BitLen(), MinRSABits)
		}
	default:
		return fmt.Errorf("unsupported key type %T", key)
	}
	return nil
}

// PublicJWK returns the public JWK of key with kid, alg and use "sig".
func PublicJWK(kid string, alg jose.SignatureAlgorithm, key crypto.Signer) jose.JSONWebKey {
	return jose.JSONWebKey{Key: key.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"}
}

// loadKey reads a signing key per the key mode.
func (l *loader) loadKey(k *SigningKey, raw *rawKey, d *diagnostics) {
	mode := l.opts.keys()
	if mode == KeysSkip {
		return
	}
	b, err := readLimited(l.fsys, k.PrivateKeyFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && mode == KeysCheck {
			d.warnf(raw.FileRange, "Private key file absent",
				"The signing key %q names %s, which does not exist here. The commands that sign (hook, mint, demo) need it; create it with: embedtoken keygen --alg %s --kid %s --out DIR.",
				k.ID, k.PrivateKeyFile, k.Algorithm, k.ID)
			return
		}
		d.errorf(raw.FileRange, "Unreadable private key", "The signing key %q names %s, which could not be read: %s.", k.ID, k.PrivateKeyFile, errText(err))
		return
	}
	signer, err := ParsePrivateKeyPEM(b)
	if err != nil {
		d.errorf(raw.FileRange, "Invalid private key", "The signing key %q file %s: %s.", k.ID, k.PrivateKeyFile, err)
		return
	}
	if err := CheckKeyAlg(k.Algorithm, signer); err != nil {
		d.errorf(raw.FileRange, "Mismatched private key", "The signing key %q declares algorithm %s, but %s: %s.", k.ID, k.Algorithm, k.PrivateKeyFile, err)
		return
	}
	k.Private = signer
	k.Public = PublicJWK(k.ID, k.Algorithm, signer)
}
