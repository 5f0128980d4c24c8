package catalog

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// ErrKeyExists is returned by WriteKey when the kid is already in use.
var ErrKeyExists = errors.New("catalog: key exists")

// GenerateKey makes a new private key for alg (EdDSA, ES256, RS256 or
// PS256). rsaBits applies to RS256 and PS256; if zero, 2048.
func GenerateKey(alg string, rsaBits int) (crypto.Signer, error) {
	switch alg {
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256", "PS256":
		if rsaBits == 0 {
			rsaBits = MinRSABits
		}
		if rsaBits < MinRSABits || rsaBits > 8192 {
			return nil, fmt.Errorf("RSA keys need %d to 8192 bits, not %d", MinRSABits, rsaBits)
		}
		return rsa.GenerateKey(rand.Reader, rsaBits)
	default:
		return nil, fmt.Errorf("unknown algorithm %q: use one of %s", alg, strings.Join(signingAlgs, ", "))
	}
}

// WriteKey generates a key for alg and writes it to dir/<kid>.key.pem
// (PKCS#8 PEM, mode 0600), then adds its public JWK (kid, alg, use sig) to
// dir/jwks.json, keeping the keys already there: that is how keys rotate.
// It refuses a kid that is already in the file or has a key file, with
// ErrKeyExists. It returns the paths written.
func WriteKey(dir, kid, alg string, rsaBits int) (keyFile, jwksFile string, err error) {
	if kid == "" || strings.ContainsAny(kid, "/\\\"' \t") || kid == "." || kid == ".." {
		return "", "", fmt.Errorf("kid %q must be non-empty, without slashes, quotes or spaces", kid)
	}
	keyFile = filepath.Join(dir, kid+".key.pem")
	jwksFile = filepath.Join(dir, "jwks.json")
	set, err := readJWKS(jwksFile)
	if err != nil {
		return "", "", err
	}
	if len(set.Key(kid)) > 0 {
		return "", "", fmt.Errorf("%w: %s already holds kid %q; choose a new kid to rotate", ErrKeyExists, jwksFile, kid)
	}
	if _, err := os.Stat(keyFile); err == nil {
		return "", "", fmt.Errorf("%w: %s exists; choose a new kid to rotate", ErrKeyExists, keyFile)
	}
	key, err := GenerateKey(alg, rsaBits)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("encode key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	f, err := os.OpenFile(keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		os.Remove(keyFile)
		return "", "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(keyFile)
		return "", "", err
	}
	set.Keys = append(set.Keys, PublicJWK(kid, jose.SignatureAlgorithm(alg), key))
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		os.Remove(keyFile)
		return "", "", err
	}
	if err := writeFileAtomic(jwksFile, append(b, '\n'), 0o644); err != nil {
		os.Remove(keyFile)
		return "", "", err
	}
	return keyFile, jwksFile, nil
}

// readJWKS reads a JWKS file; an absent file is an empty set.
func readJWKS(p string) (*jose.JSONWebKeySet, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return &jose.JSONWebKeySet{}, nil
	}
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s is not a JWKS: %w", p, err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("%s holds a private key (kid %q): a JWKS file must hold public keys only", p, k.KeyID)
		}
	}
	return &set, nil
}

// writeFileAtomic writes b to p through a temporary file and a rename, so
// that a reader (a sidecar watching the file) never sees half a file.
func writeFileAtomic(p string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
