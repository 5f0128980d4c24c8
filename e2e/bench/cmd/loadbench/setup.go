package main

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
)

// The subject of every benchmark token: a UUID sub and client_id, as Hydra
// issues them, and the claims the shipped catalog copies.
const (
	benchSub      = "5b0c8f1e-8d51-4b61-9a1d-4a1f0e3b2c7d"
	benchClientID = "f61b936a-a034-4f84-82c2-a34cdc8f68c0"
	benchAudience = "https://gateway.bench"
	hookKey       = "bench-hook-key-0123456789"
)

var benchClaims = map[string]any{"email": "ada@example.test", "tenant": "acme", "name": "Ada Lovelace"}

// minterJWKSLine is the shipped catalog's jwks_url, replaced by the
// generated key set: nothing serves the minter's JWKS in the benchmark.
var minterJWKSLine = regexp.MustCompile(`(?m)^(\s*)jwks_url(\s*)=.*$`)

// apiLifetime matches every lifetime line of the shipped catalog.
var apiLifetime = regexp.MustCompile(`(?m)^(\s*)(lifetime|default_lifetime)(\s*)=.*$`)

// longLived sets every lifetime of a catalog to 3h: the shipped lifetimes
// (1 to 10 minutes) are shorter than a run, and an expired inner token
// would turn warm runs cold. Token sizes do not change.
func longLived(src string) string {
	return apiLifetime.ReplaceAllString(src, `${1}${2}${3}= "3h"`)
}

// shippedCatalog returns hcl/catalog.hcl with its minter keys read from
// keys/minter/jwks.json.
func shippedCatalog(repo string) (string, error) {
	b, err := os.ReadFile(filepath.Join(repo, "hcl", "catalog.hcl"))
	if err != nil {
		return "", err
	}
	if n := len(minterJWKSLine.FindAllIndex(b, -1)); n != 1 {
		return "", fmt.Errorf("hcl/catalog.hcl: expected one jwks_url line, found %d", n)
	}
	return minterJWKSLine.ReplaceAllString(string(b), `${1}jwks_file${2}= "keys/minter/jwks.json"`), nil
}

// generatedCatalog declares k exposed APIs with two scopes and two claims
// each (as mint's BenchmarkMint), signed with EdDSA.
func generatedCatalog(k int) (string, []string) {
	var src strings.Builder
	src.WriteString(`minter {
  issuer             = "https://minter.bench"
  jwks_file          = "keys/minter/jwks.json"
  active_key         = "minter-1"
  max_embedded_bytes = 1000000
  signing_key "minter-1" {
    algorithm        = "EdDSA"
    private_key_file = "keys/minter/minter-1.key.pem"
  }
}
`)
	var scopes []string
	for i := 0; i < k; i++ {
		fmt.Fprintf(&src, "api \"api%02d\" {\n  audience = \"https://api%02d.bench\"\n  scopes   = [\"api%02d:read\", \"api%02d:write\"]\n  claims   = [\"email\", \"tenant\"]\n}\n", i, i, i, i)
		scopes = append(scopes, fmt.Sprintf("api%02d:read", i))
	}
	return src.String(), scopes
}

// writeConfigDir writes catalog.hcl plus extra files into a new folder
// under root and an EdDSA minter key into its keys/minter.
func writeConfigDir(root, name, catalogSrc string, extra map[string]string) (string, error) {
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	files := map[string]string{"catalog.hcl": catalogSrc}
	for k, v := range extra {
		files[k] = v
	}
	for rel, src := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			return "", err
		}
	}
	if _, _, err := catalog.WriteKey(filepath.Join(dir, "keys", "minter"), "minter-1", "EdDSA", 0); err != nil {
		return "", err
	}
	return dir, nil
}

// loadCatalog loads the top-level *.hcl of dir with private keys.
func loadCatalog(dir string) (*catalog.Catalog, error) {
	cat, _, diags := catalog.LoadFiles([]string{dir}, &catalog.Options{Keys: catalog.KeysRequire,
		LookupEnv: func(string) (string, bool) { return hookKey, true }})
	if diags.HasErrors() {
		return nil, diags
	}
	return cat, nil
}

// devIssuer is the RS256-2048 development issuer whose keys the key server
// publishes.
type devIssuer struct {
	*mint.DevIssuer
	jwks   jose.JSONWebKeySet
	key    crypto.Signer
	typJWT bool // Sign's tokens are signed again with typ JWT
}

func newDevIssuer(issuer string) (*devIssuer, error) {
	return newDevIssuerFor(issuer, 3*time.Hour, false)
}

func newDevIssuerFor(issuer string, lifetime time.Duration, typJWT bool) (*devIssuer, error) {
	key, err := catalog.GenerateKey("RS256", 2048)
	if err != nil {
		return nil, err
	}
	d, err := mint.NewDevIssuer(key, jose.RS256, mint.DevIssuerOptions{
		Issuer: issuer, KeyID: "bench-1", Audience: []string{benchAudience}, Lifetime: lifetime,
	})
	if err != nil {
		return nil, err
	}
	return &devIssuer{DevIssuer: d, jwks: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{catalog.PublicJWK("bench-1", jose.RS256, key.(crypto.Signer))}},
		key: key.(crypto.Signer), typJWT: typJWT}, nil
}

// Sign is mint.DevIssuer's, signed again with typ JWT when so configured.
func (d *devIssuer) Sign(s mint.Subject, res mint.Result) (string, error) {
	tok, err := d.DevIssuer.Sign(s, res)
	if err != nil || !d.typJWT {
		return tok, err
	}
	return resignTypJWT(tok, d.key, "bench-1")
}

// mintOuterTokens mints n outer tokens (each with fresh inner tokens) for
// the catalog in dir and writes them to file, one per line. It returns the
// first token.
func mintOuterTokens(dir string, dev *devIssuer, scopes []string, n int, file string) (string, error) {
	cat, err := loadCatalog(dir)
	if err != nil {
		return "", err
	}
	m, err := mint.New(cat, nil)
	if err != nil {
		return "", err
	}
	toks := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	const workers = 2
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				s := mint.Subject{Sub: benchSub, ClientID: benchClientID, Scopes: scopes, Claims: benchClaims, Exp: dev.Exp()}
				res, err := m.Mint(context.Background(), s)
				if err == nil {
					toks[i], err = dev.Sign(s, res)
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if firstErr != nil {
		return "", firstErr
	}
	if err := os.WriteFile(file, []byte(strings.Join(toks, "\n")+"\n"), 0o600); err != nil {
		return "", err
	}
	return toks[0], nil
}

// hydraTemplate is the shape of the body Ory Hydra v2.3.0 POSTs to its
// token hook for a client_credentials grant (as captured on loopback).
const hydraTemplate = `{
  "session": {
    "id_token": {
      "id_token_claims": {"jti": "", "iss": "http://127.0.0.1:4444", "sub": "", "aud": null, "nonce": "",
        "exp": "0001-01-01T00:00:00Z", "iat": "2026-11-29T14:30:35.362717414Z", "rat": "0001-01-01T00:00:00Z",
        "auth_time": "0001-01-01T00:00:00Z", "at_hash": "", "acr": "", "amr": null, "c_hash": "", "ext": null},
      "headers": {"extra": null},
      "expires_at": {"access_token": ""},
      "username": "",
      "subject": ""
    },
    "extra": {},
    "kid": "fe28213d-03f8-458a-9874-b51bba51621a",
    "client_id": "",
    "consent_challenge": "",
    "exclude_not_before_claim": false,
    "allowed_top_level_claims": [],
    "mirror_top_level_claims": true
  },
  "request": {
    "client_id": "",
    "requested_scopes": [],
    "granted_scopes": [],
    "granted_audience": [],
    "grant_types": ["client_credentials"],
    "payload": {"grant_type": ["client_credentials"], "scope": [""]}
  }
}`

// hydraBody returns a Hydra token-hook body granting scopes, expiring in
// two hours, with the subject claims in session.extra.
func hydraBody(scopes []string) ([]byte, error) {
	var v map[string]any
	if err := json.Unmarshal([]byte(hydraTemplate), &v); err != nil {
		return nil, err
	}
	sess := v["session"].(map[string]any)
	idt := sess["id_token"].(map[string]any)
	idt["subject"] = benchSub
	idt["expires_at"].(map[string]any)["access_token"] = time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339Nano)
	sess["client_id"] = benchClientID
	sess["extra"] = benchClaims
	req := v["request"].(map[string]any)
	req["client_id"] = benchClientID
	req["requested_scopes"] = scopes
	req["granted_scopes"] = scopes
	req["payload"].(map[string]any)["scope"] = []string{strings.Join(scopes, " ")}
	return json.Marshal(v)
}

// shippedScopes grants every scope of the shipped catalog.
var shippedScopes = []string{"orders:read", "orders:write", "billing:read", "billing:charge", "ledger:append", "inventory:read", "profile:read"}

// countMinted mints once in process for scopes: the tokens signed per
// request (nested ones included) and the size of the embedded map.
func countMinted(cat *catalog.Catalog, scopes []string) (signed, exposed int, err error) {
	m, err := mint.New(cat, nil)
	if err != nil {
		return 0, 0, err
	}
	res, err := m.Mint(context.Background(), mint.Subject{Sub: benchSub, ClientID: benchClientID, Scopes: scopes,
		Claims: benchClaims, Exp: time.Now().Add(time.Hour)})
	if err != nil {
		return 0, 0, err
	}
	return len(res.Minted), len(res.Tokens), nil
}

// benchTrust starts what the gateway and grpc suites share: a development
// issuer whose JWKS a key server on keysPort serves, the shipped catalog,
// and the trust block for that issuer. The caller closes the key server.
func benchTrust(repo string, keysPort int) (*devIssuer, *keyServer, string, string, error) {
	dev, err := newDevIssuer("http://" + addr(keysPort))
	if err != nil {
		return nil, nil, "", "", err
	}
	ks, err := startKeyServer(keysPort, dev.jwks)
	if err != nil {
		return nil, nil, "", "", err
	}
	src, err := shippedCatalog(repo)
	if err != nil {
		ks.close()
		return nil, nil, "", "", err
	}
	trust := fmt.Sprintf("trust \"bench\" {\n  issuer     = %q\n  jwks_url   = \"%s/.well-known/jwks.json\"\n  algorithms = [\"RS256\"]\n  audience   = [%q]\n}\n", ks.url, ks.url, benchAudience)
	return dev, ks, src, trust, nil
}
