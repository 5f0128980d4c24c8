package mint

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/catalog"
)

// DefaultOuterLifetime is the development issuer's access-token lifetime
// when DevIssuerOptions leaves Lifetime zero.
const DefaultOuterLifetime = time.Hour

// algFor returns the JWS algorithm a development issuer signs with key:
// RS256 for RSA, ES256, ES384 or ES512 by curve, EdDSA for Ed25519.
func algFor(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return jose.RS256, nil
	case ed25519.PrivateKey:
		return jose.EdDSA, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	}
	return "", fmt.Errorf("mint: unsupported key type %T", key)
}

// DevIssuerOptions configure a DevIssuer.
type DevIssuerOptions struct {
	// Issuer is the iss of the outer tokens. Required.
	Issuer string
	// KeyID is the kid header. If empty, LoadDevIssuer uses the key file's
	// name without ".key.pem" (keygen's naming), else the RFC 7638
	// thumbprint of the public key.
	KeyID string
	// Audience is the aud of the outer tokens; omitted when empty.
	Audience []string
	// Lifetime of the outer tokens. If zero, DefaultOuterLifetime.
	Lifetime time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// DevIssuer mints whole outer access tokens shaped like RFC 9068 (typ
// at+jwt; iss, sub, aud, exp, iat, jti, client_id, scope) with an embedded
// map: a development issuer for tests, the demo and benchmarks. It is safe
// for concurrent use.
type DevIssuer struct {
	opts   DevIssuerOptions
	signer jose.Signer
	alg    jose.SignatureAlgorithm
}

// NewDevIssuer returns a development issuer signing with key.
func NewDevIssuer(key crypto.Signer, alg jose.SignatureAlgorithm, opts DevIssuerOptions) (*DevIssuer, error) {
	if opts.Issuer == "" {
		return nil, errors.New("mint: development issuer needs an issuer URL")
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = DefaultOuterLifetime
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeyID == "" {
		tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("mint: key thumbprint: %w", err)
		}
		opts.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	signer, err := newSigner(opts.KeyID, alg, key)
	if err != nil {
		return nil, fmt.Errorf("mint: development issuer key: %w", err)
	}
	return &DevIssuer{opts: opts, signer: signer, alg: alg}, nil
}

// LoadDevIssuer reads a PKCS#8 PEM key file and returns a development
// issuer signing with it.
func LoadDevIssuer(keyFile string, opts DevIssuerOptions) (*DevIssuer, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("mint: read outer key: %w", err)
	}
	key, err := catalog.ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("mint: outer key %s: %w", keyFile, err)
	}
	alg, err := algFor(key)
	if err != nil {
		return nil, err
	}
	if err := catalog.CheckKeyAlg(alg, key); err != nil {
		return nil, fmt.Errorf("mint: outer key %s: %w", keyFile, err)
	}
	if opts.KeyID == "" {
		if base := filepath.Base(keyFile); strings.HasSuffix(base, ".key.pem") {
			opts.KeyID = strings.TrimSuffix(base, ".key.pem")
		}
	}
	return NewDevIssuer(key, alg, opts)
}

// KeyID returns the kid of the issuer's tokens.
func (d *DevIssuer) KeyID() string { return d.opts.KeyID }

// Exp returns the expiry of an outer token minted now: pass it as
// Subject.Exp to Minter.Mint, then the Result to Sign.
func (d *DevIssuer) Exp() time.Time {
	return time.Unix(d.opts.Now().Add(d.opts.Lifetime).Unix(), 0)
}

// Sign returns the compact outer token for s carrying res's embedded map
// under res.Claim. Its claims are iss, sub, aud (when configured), exp
// (s.Exp), iat, jti, client_id, scope (the granted scopes, possibly empty),
// and s.Claims except the reserved names.
func (d *DevIssuer) Sign(s Subject, res Result) (string, error) {
	if s.Sub == "" || s.ClientID == "" || s.Exp.IsZero() {
		return "", fmt.Errorf("%w: sub, client_id and exp are required", ErrInvalidSubject)
	}
	claims := make(map[string]any, len(s.Claims)+9)
	for k, v := range s.Claims {
		if !Reserved(k, res.Claim) {
			claims[k] = v
		}
	}
	claims["iss"] = d.opts.Issuer
	claims["sub"] = s.Sub
	if len(d.opts.Audience) == 1 {
		claims["aud"] = d.opts.Audience[0]
	} else if len(d.opts.Audience) > 1 {
		claims["aud"] = d.opts.Audience
	}
	claims["exp"] = s.Exp.Unix()
	claims["iat"] = d.opts.Now().Unix()
	claims["jti"] = newJTI()
	claims["client_id"] = s.ClientID
	claims["scope"] = strings.Join(s.Scopes, " ")
	if res.Claim != "" {
		tokens := res.Tokens
		if tokens == nil {
			tokens = map[string]string{}
		}
		claims[res.Claim] = tokens
	}
	payload, err := marshalCompact(claims)
	if err != nil {
		return "", fmt.Errorf("mint: encode outer claims: %w", err)
	}
	jws, err := d.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("mint: sign outer token: %w", err)
	}
	return jws.CompactSerialize()
}
