package unwrap

// Security review of the verify path (claims.go, jwks.go, verify.go,
// cache.go and the strictjson check that runs first): every hypothesis about
// what a hostile token could exploit is a test here. A passing test
// documents a defence.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// signAlg signs header and payload JSON texts with priv for alg, for the
// algorithms signRaw does not cover.
func signAlg(alg string, priv crypto.Signer, headerJSON, payloadJSON string) string {
	in := b64([]byte(headerJSON)) + "." + b64([]byte(payloadJSON))
	return in + "." + b64(sigOver(alg, priv, in))
}

func sigOver(alg string, priv crypto.Signer, in string) []byte {
	digest := func() (crypto.Hash, []byte) {
		switch alg[2:] {
		case "384":
			d := sha512.Sum384([]byte(in))
			return crypto.SHA384, d[:]
		case "512":
			d := sha512.Sum512([]byte(in))
			return crypto.SHA512, d[:]
		}
		d := sha256.Sum256([]byte(in))
		return crypto.SHA256, d[:]
	}
	var sig []byte
	var err error
	switch {
	case alg == "EdDSA":
		sig = ed25519.Sign(priv.(ed25519.PrivateKey), []byte(in))
	case strings.HasPrefix(alg, "RS"):
		h, d := digest()
		sig, err = rsa.SignPKCS1v15(rand.Reader, priv.(*rsa.PrivateKey), h, d)
	case strings.HasPrefix(alg, "PS"):
		h, d := digest()
		sig, err = rsa.SignPSS(rand.Reader, priv.(*rsa.PrivateKey), h, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case strings.HasPrefix(alg, "ES"):
		_, d := digest()
		k := priv.(*ecdsa.PrivateKey)
		r, s, e := ecdsa.Sign(rand.Reader, k, d)
		if e != nil {
			panic(e)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	default:
		panic("alg " + alg)
	}
	if err != nil {
		panic(err)
	}
	return sig
}

// verifyReason runs the verifier on tok and returns the failure's reason,
// or "" when it verified.
func verifyReason(t *testing.T, e *env, tok string) Reason {
	t.Helper()
	_, err := e.sc.verifier.Verify(context.Background(), tok)
	if err == nil {
		return ""
	}
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("not a *Failure: %v", err)
	}
	return f.Reason
}

// setJWKSBody serves body as a key set and reloads it now.
func setJWKSBody(t *testing.T, s *jwksServer, ks *keySet, body string) {
	t.Helper()
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
	if err := ks.refetch(t.Context(), true); err != nil {
		t.Fatalf("refetch: %v", err)
	}
}

func jwkJSON(t *testing.T, k jose.JSONWebKey) string {
	t.Helper()
	b, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReviewPayloadParsing drives parseToken with hostile payloads: the
// strictjson check and the single-pass claim reader must agree on every
// member name and refuse every wrong type.
func TestReviewPayloadParsing(t *testing.T) {
	h := b64([]byte(`{"alg":"RS256","kid":"k","typ":"at+jwt"}`))
	parse := func(payload string) (*parsed, *Failure) {
		p := new(parsed)
		f := parseToken(h+"."+b64([]byte(payload))+".c2ln", p)
		return p, f
	}
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	refused := []struct {
		name, payload string
		want          Reason
	}{
		{"escaped duplicate of iss", `{"iss":"a","\u0069ss":"b"}`, ReasonDuplicateMember},
		{"escaped duplicate, escaped first", `{"\u0069\u0073\u0073":"b","iss":"a"}`, ReasonDuplicateMember},
		{"escaped solidus duplicate", `{"a/b":1,"a\/b":2}`, ReasonDuplicateMember},
		{"invalid UTF-8 names that decode alike", "{\"\xff\":1,\"\xfe\":2}", ReasonDuplicateMember},
		{"invalid UTF-8 and U+FFFD", "{\"\xff\":1,\"\\ufffd\":2}", ReasonDuplicateMember},
		{"lone surrogates that decode alike", `{"\ud800":1,"\udc00":2}`, ReasonDuplicateMember},
		{"duplicate deep inside", `{"a":[{"x":1,"x":2}]}`, ReasonDuplicateMember},
		{"duplicate in the embedded map, escaped", `{"embedded_tokens":{"orders":"a","\u006frders":"b"}}`, ReasonDuplicateMember},
		{"byte order mark", "\xef\xbb\xbf{}", ReasonMalformed},
		{"trailing object", `{}{}`, ReasonMalformed},
		{"trailing garbage", `{} x`, ReasonMalformed},
		{"NUL after the object", "{}\x00", ReasonMalformed},
		{"raw control in a string", "{\"sub\":\"a\x01\"}", ReasonMalformed},
		{"bad escape", `{"sub":"\x41"}`, ReasonMalformed},
		{"short unicode escape", `{"sub":"\u12"}`, ReasonMalformed},
		{"too deep", deep, ReasonMalformed},
		{"null", `null`, ReasonMalformed},
		{"array", `[]`, ReasonMalformed},
		{"string", `"x"`, ReasonMalformed},
		{"leading plus", `{"exp":+1}`, ReasonMalformed},
		{"NaN", `{"exp":NaN}`, ReasonMalformed},
		{"Infinity", `{"exp":Infinity}`, ReasonMalformed},
		{"leading zero", `{"exp":01}`, ReasonMalformed},
		{"hex", `{"exp":0x10}`, ReasonMalformed},
		{"single quotes", `{'sub':'a'}`, ReasonMalformed},
		{"trailing comma", `{"sub":"a",}`, ReasonMalformed},
		{"exp 1e400", `{"exp":1e400}`, ReasonClaimType},
		{"exp -1e400", `{"exp":-1e400}`, ReasonClaimType},
		{"exp negative", `{"exp":-1}`, ReasonClaimType},
		{"exp over 2^40", `{"exp":1099511627777}`, ReasonClaimType},
		{"exp string", `{"exp":"1900000000"}`, ReasonClaimType},
		{"exp bool", `{"exp":true}`, ReasonClaimType},
		{"exp object", `{"exp":{}}`, ReasonClaimType},
		{"exp array", `{"exp":[1900000000]}`, ReasonClaimType},
		{"nbf string", `{"nbf":"0"}`, ReasonClaimType},
		{"iat bool", `{"iat":false}`, ReasonClaimType},
		{"escaped exp as string", `{"\u0065xp":"1"}`, ReasonClaimType},
		{"aud object", `{"aud":{"https://orders.test":true}}`, ReasonClaimType},
		{"aud number", `{"aud":1}`, ReasonClaimType},
		{"aud nested array", `{"aud":[["https://orders.test"]]}`, ReasonClaimType},
		{"aud array of objects", `{"aud":[{}]}`, ReasonClaimType},
		{"scope array", `{"scope":["orders:read"]}`, ReasonClaimType},
		{"scope object", `{"scope":{"orders:read":true}}`, ReasonClaimType},
		{"scp string", `{"scp":"orders:read"}`, ReasonClaimType},
		{"scp numbers", `{"scp":[1]}`, ReasonClaimType},
		{"sub object", `{"sub":{"id":"alice"}}`, ReasonClaimType},
		{"client_id array", `{"client_id":["app"]}`, ReasonClaimType},
		{"iss bool", `{"iss":true}`, ReasonClaimType},
		{"jti number", `{"jti":7}`, ReasonClaimType},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, f := parse(tc.payload)
			if f == nil {
				t.Fatal("accepted")
			}
			if f.Reason != tc.want {
				t.Fatalf("reason %q, want %q", f.Reason, tc.want)
			}
		})
	}

	// Accepted, and read as encoding/json would.
	p, f := parse(`{"\u0069ss":"a\u0000b","sub":"\ud83d\ude00","exp":1.9e9,"nbf":-0,"iat":1e-400,` +
		`"aud":["x",null],"scope":" a  b a ","scp":[null,"c","a"],"ISS":"ignored"}`)
	if f != nil {
		t.Fatalf("refused: %v", f)
	}
	c := p.claims
	if c.Issuer != "a\x00b" || c.Subject != "\U0001F600" {
		t.Errorf("strings: iss %q sub %q", c.Issuer, c.Subject)
	}
	if c.Expiry.Unix() != 1_900_000_000 || c.NotBefore.Unix() != 0 || c.IssuedAt.Unix() != 0 {
		t.Errorf("dates: %v %v %v", c.Expiry.Unix(), c.NotBefore.Unix(), c.IssuedAt.Unix())
	}
	if fmt.Sprint(c.Audience) != "[x ]" || fmt.Sprint(c.Scopes) != "[a b c]" || !c.HasScopeClaim {
		t.Errorf("aud %q scopes %q", c.Audience, c.Scopes)
	}
	// Names match exactly: ISS is not iss (RFC 7519 4); it is an other member.
	if len(p.members) != 1 || p.members[0].name() != "ISS" {
		t.Errorf("members: %d", len(p.members))
	}
	// A fractional exp is floored, never rounded up.
	if p, _ := parse(`{"exp":1900000000.999}`); p.claims.Expiry.Unix() != 1_900_000_000 {
		t.Errorf("exp floor: %d", p.claims.Expiry.Unix())
	}
	// Null means absent for every registered claim.
	if p, f := parse(`{"iss":null,"exp":null,"aud":null,"scope":null,"scp":null}`); f != nil || !p.claims.Expiry.IsZero() || p.claims.HasScopeClaim || p.claims.Audience != nil {
		t.Errorf("nulls: %v %+v", f, p.claims)
	}
}

// TestReviewHeaderParsing: header members are read with the same rules, and
// every crit is refused.
func TestReviewHeaderParsing(t *testing.T) {
	pl := b64([]byte(`{}`))
	parse := func(header string) (*parsed, *Failure) {
		p := new(parsed)
		return p, parseToken(b64([]byte(header))+"."+pl+".c2ln", p)
	}
	for _, tc := range []struct {
		header string
		want   Reason
	}{
		{`{"alg":"RS256","crit":["b64"],"b64":false}`, ReasonCrit},
		{`{"alg":"RS256","crit":[]}`, ReasonCrit},
		{`{"alg":"RS256","crit":null}`, ReasonCrit},
		{`{"alg":"RS256","\u0063rit":["exp"]}`, ReasonCrit},
		{`{"alg":"RS256","alg":"none"}`, ReasonDuplicateMember},
		{`{"alg":"RS256","\u0061lg":"none"}`, ReasonDuplicateMember},
		{`{"alg":["RS256"]}`, ReasonClaimType},
		{`{"alg":"RS256","kid":1}`, ReasonClaimType},
		{`{"alg":"RS256","kid":{"x":1}}`, ReasonClaimType},
		{`{"alg":"RS256","typ":1}`, ReasonClaimType},
		{`{"alg":"RS256","typ":["at+jwt"]}`, ReasonClaimType},
		{"\xef\xbb\xbf{\"alg\":\"RS256\"}", ReasonMalformed},
		{`["alg","RS256"]`, ReasonMalformed},
	} {
		if _, f := parse(tc.header); f == nil || f.Reason != tc.want {
			t.Errorf("%s: got %v, want %s", tc.header, f, tc.want)
		}
	}
	p, f := parse(`{"\u0061lg":"RS256","kid":"a\u0000","typ":"Application/AT+JWT","b64":false,"zip":"DEF"}`)
	if f != nil || p.header.Alg != "RS256" || p.header.Kid != "a\x00" || p.header.normTyp() != "at+jwt" {
		t.Errorf("header: %v %+v", f, p.header)
	}
	if p, _ := parse(`{"alg":"RS256","typ":null}`); p.header.HasTyp {
		t.Error("typ null is a typ")
	}
	if p, _ := parse(`{"alg":"RS256","typ":"application/"}`); !p.header.HasTyp || p.header.normTyp() != "" {
		t.Errorf("typ application/: %+v", p.header)
	}
}

// TestReviewHeaderTricks sends properly signed outer tokens with odd headers
// through the verifier.
func TestReviewHeaderTricks(t *testing.T) {
	e := newEnv(t, envOpts{})
	claims := func() string { return mustJSON(e.outerClaims(e.chain())) }
	withHeader := func(h string) string { return signRaw(e.idpKey, h, claims()) }
	for _, tc := range []struct {
		name, header string
		want         Reason
	}{
		{"alg with a trailing space", `{"alg":"RS256 ","kid":"idp-1","typ":"at+jwt"}`, ReasonAlgNotAllowed},
		{"alg lower case", `{"alg":"rs256","kid":"idp-1","typ":"at+jwt"}`, ReasonAlgNotAllowed},
		{"alg with NUL", `{"alg":"RS256\u0000","kid":"idp-1","typ":"at+jwt"}`, ReasonAlgNotAllowed},
		{"alg null", `{"alg":null,"kid":"idp-1","typ":"at+jwt"}`, ReasonAlgNotAllowed},
		{"alg missing", `{"kid":"idp-1","typ":"at+jwt"}`, ReasonAlgNotAllowed},
		{"alg PS256 not allowed", `{"alg":"PS256","kid":"idp-1","typ":"at+jwt"}`, ReasonAlgNotAllowed},
		{"typ with a space", `{"alg":"RS256","kid":"idp-1","typ":"at+jwt "}`, ReasonTyp},
		{"typ empty", `{"alg":"RS256","kid":"idp-1","typ":""}`, ReasonTyp},
		{"typ application/", `{"alg":"RS256","kid":"idp-1","typ":"application/"}`, ReasonTyp},
		{"typ null", `{"alg":"RS256","kid":"idp-1","typ":null}`, ReasonTyp},
		{"typ jwt", `{"alg":"RS256","kid":"idp-1","typ":"jwt"}`, ReasonTyp},
		{"typ with a parameter", `{"alg":"RS256","kid":"idp-1","typ":"at+jwt;q=1"}`, ReasonTyp},
		{"kid path traversal", `{"alg":"RS256","kid":"../idp-1","typ":"at+jwt"}`, ReasonUnknownKid},
		{"kid with NUL", `{"alg":"RS256","kid":"idp-1\u0000","typ":"at+jwt"}`, ReasonUnknownKid},
		{"kid of the minter's key", `{"alg":"RS256","kid":"m-1","typ":"at+jwt"}`, ReasonUnknownKid},
		{"kid of the hydra trust's key", `{"alg":"RS256","kid":"hydra-1","typ":"at+jwt"}`, ReasonUnknownKid},
		{"crit b64 false", `{"alg":"RS256","kid":"idp-1","typ":"at+jwt","crit":["b64"],"b64":false}`, ReasonCrit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := verifyReason(t, e, withHeader(tc.header)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	// Accepted variants: typ folding (RFC 7515 4.1.9), an escaped member
	// name, and headers we do not implement but that change nothing about
	// what was signed (b64 without crit, zip in a JWS).
	for _, h := range []string{
		`{"alg":"RS256","kid":"idp-1","typ":"AT+JWT"}`,
		`{"alg":"RS256","kid":"idp-1","typ":"application/at+jwt"}`,
		`{"\u0061lg":"RS256","kid":"idp-1","typ":"at+jwt"}`,
		`{"alg":"RS256","kid":"idp-1","typ":"at+jwt","b64":false}`,
		`{"alg":"RS256","kid":"idp-1","typ":"at+jwt","zip":"DEF"}`,
	} {
		if got := verifyReason(t, e, withHeader(h)); got != "" {
			t.Errorf("%s: %q", h, got)
		}
	}
	// b64:false without crit does not make a raw payload acceptable: the
	// payload is always base64url, and what is verified is what was sent.
	h := `{"alg":"RS256","kid":"idp-1","typ":"at+jwt","b64":false}`
	raw := b64([]byte(h)) + "." + claims()
	d := sha256.Sum256([]byte(raw))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, e.idpKey.priv.(*rsa.PrivateKey), crypto.SHA256, d[:])
	if got := verifyReason(t, e, raw+"."+b64(sig)); got != ReasonMalformed {
		t.Errorf("b64:false raw payload: %q", got)
	}
	// An outer token from the idp signed by the minter's key, and a token
	// signed by the idp whose iss is the minter: each issuer's own algs and
	// keys only.
	if got := verifyReason(t, e, signRaw(e.minter, `{"alg":"EdDSA","kid":"m-1","typ":"at+jwt"}`, claims())); got != ReasonAlgNotAllowed {
		t.Errorf("idp token signed by the minter: %q", got)
	}
	mc := e.innerClaims("https://orders.test", "orders:read", time.Minute)
	if got := verifyReason(t, e, sign(e.idpKey, hdr(e.idpKey, "at+jwt"), mc)); got != ReasonAlgNotAllowed {
		t.Errorf("minter token signed by the idp: %q", got)
	}
	// A minter key in the minter's set with an RSA alg header: refused
	// before any key lookup.
	if got := verifyReason(t, e, signRaw(e.minter, `{"alg":"RS256","kid":"m-1","typ":"at+jwt"}`, mustJSON(mc))); got != ReasonAlgNotAllowed {
		t.Errorf("minter token with RS256: %q", got)
	}
	// Inner tokens: typ must be at+jwt.
	for _, typ := range []string{"JWT", "", "at+jwt "} {
		hh := map[string]any{"alg": "EdDSA", "kid": "m-1"}
		if typ != "" {
			hh["typ"] = typ
		}
		if got := verifyReason(t, e, sign(e.minter, hh, mc)); got != ReasonTyp {
			t.Errorf("minter typ %q: %q", typ, got)
		}
	}
}

// TestReviewSignatureEncoding: one signature, one encoding.
func TestReviewSignatureEncoding(t *testing.T) {
	e := newEnv(t, envOpts{})
	valid := e.outer()
	if got := verifyReason(t, e, valid); got != "" {
		t.Fatalf("valid: %q", got)
	}
	dot := strings.LastIndexByte(valid, '.')
	in, sig := valid[:dot], valid[dot+1:]
	raw, _ := b64url.DecodeString(sig)
	// A 256-byte signature is 342 base64url characters with 2 stray bits
	// in the last one: setting them gives the same bytes, non-canonically.
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	stray := string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
	std := strings.NewReplacer("-", "+", "_", "/").Replace(sig)
	for _, tc := range []struct {
		name, tok string
		want      Reason
	}{
		{"padding", valid + "==", ReasonMalformed},
		{"stray bits", in + "." + sig[:len(sig)-1] + stray, ReasonMalformed},
		{"standard alphabet", in + "." + std, ReasonMalformed},
		{"truncated", in + "." + b64(raw[:len(raw)-3]), ReasonSignature},
		{"extended", in + "." + sig + "AAAA", ReasonSignature},
		{"empty", in + ".", ReasonMalformed},
		{"zero signature", in + "." + b64(make([]byte, len(raw))), ReasonSignature},
		{"space inside", in + "." + sig[:10] + " " + sig[10:], ReasonMalformed},
		{"newline inside", in + "." + sig[:10] + "\n" + sig[10:], ReasonMalformed},
		{"CRLF inside", in + "." + sig[:10] + "\r\n" + sig[10:], ReasonMalformed},
		{"newline at the end", valid + "\n", ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "stray bits" && tc.tok == valid {
				t.Fatal("test token is the valid one")
			}
			if got := verifyReason(t, e, tc.tok); got != tc.want {
				t.Errorf("Verify: got %q, want %q", got, tc.want)
			}
			// VerifyOuter (the exchange endpoint's subject tokens) has no
			// b64token check in front of it.
			_, err := e.sc.verifier.VerifyOuter(t.Context(), tc.tok)
			var f *Failure
			if !errors.As(err, &f) || f.Reason != tc.want {
				t.Errorf("VerifyOuter: got %v, want %q", err, tc.want)
			}
		})
	}
}

// ecEnv is an env whose idp key set also holds ECDSA keys (the idp trust
// allows RS256 and ES256).
type ecEnv struct {
	*env
	p256, p384 *ecdsa.PrivateKey
}

func newECEnv(t *testing.T) *ecEnv {
	e := newEnv(t, envOpts{})
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	keys := []string{
		jwkJSON(t, e.idpKey.jwk()),
		jwkJSON(t, jose.JSONWebKey{Key: p256.Public(), KeyID: "ec-256", Algorithm: "ES256", Use: "sig"}),
		jwkJSON(t, jose.JSONWebKey{Key: p384.Public(), KeyID: "ec-384", Use: "sig"}), // no alg
	}
	setJWKSBody(t, e.idpJWKS, e.sc.verifier.trusts[0].keys, `{"keys":[`+strings.Join(keys, ",")+`]}`)
	return &ecEnv{env: e, p256: p256, p384: p384}
}

// TestReviewECDSA: r||s of the curve's size only, the key's curve only.
func TestReviewECDSA(t *testing.T) {
	e := newECEnv(t)
	claims := mustJSON(e.outerClaims(e.chain()))
	h256 := `{"alg":"ES256","kid":"ec-256","typ":"at+jwt"}`
	if got := verifyReason(t, e.env, signAlg("ES256", e.p256, h256, claims)); got != "" {
		t.Fatalf("valid ES256: %q", got)
	}
	in := b64([]byte(h256)) + "." + b64([]byte(claims))
	d := sha256.Sum256([]byte(in))
	r, s, _ := ecdsa.Sign(rand.Reader, e.p256, d[:])
	der, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	rs := make([]byte, 64)
	r.FillBytes(rs[:32])
	s.FillBytes(rs[32:])
	padded := append(append(append([]byte{0}, rs[:32]...), 0), rs[32:]...)
	n := elliptic.P256().Params().N
	high := make([]byte, 64) // (r, n-s): the other valid s, RFC 7518 does not forbid it
	r.FillBytes(high[:32])
	new(big.Int).Sub(n, s).FillBytes(high[32:])
	rN := make([]byte, 64) // r + n does not fit; r = n is out of range
	n.FillBytes(rN[:32])
	s.FillBytes(rN[32:])
	for _, tc := range []struct {
		name string
		sig  []byte
		want Reason
	}{
		{"DER", der, ReasonSignature},
		{"r and s padded to 33 bytes", padded, ReasonSignature},
		{"r||s truncated", rs[:63], ReasonSignature},
		{"zero", make([]byte, 64), ReasonSignature},
		{"r = n", rN, ReasonSignature},
		{"low and high s", high, ""},
	} {
		if got := verifyReason(t, e.env, in+"."+b64(tc.sig)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// ES256 with the P-384 key (its JWK has no alg): the curve must be alg's.
	h := `{"alg":"ES256","kid":"ec-384","typ":"at+jwt"}`
	if got := verifyReason(t, e.env, signAlg("ES384", e.p384, h, claims)); got != ReasonSignature {
		t.Errorf("ES256 header, P-384 key: %q", got)
	}
	// A P-384 signature truncated to 64 bytes is no ES256 signature either.
	sig := sigOver("ES384", e.p384, b64([]byte(h))+"."+b64([]byte(claims)))
	if got := verifyReason(t, e.env, b64([]byte(h))+"."+b64([]byte(claims))+"."+b64(sig[:64])); got != ReasonSignature {
		t.Errorf("P-384 signature cut to 64 bytes: %q", got)
	}
	// alg and key type must fit: RS256 with an EC kid, ES256 with the RSA kid.
	if got := verifyReason(t, e.env, signRaw(e.idpKey, `{"alg":"RS256","kid":"ec-256","typ":"at+jwt"}`, claims)); got != ReasonKeyAlg {
		t.Errorf("RS256 with an EC kid: %q", got)
	}
	if got := verifyReason(t, e.env, signAlg("ES256", e.p256, `{"alg":"ES256","kid":"idp-1","typ":"at+jwt"}`, claims)); got != ReasonKeyAlg {
		t.Errorf("ES256 with the RSA kid: %q", got)
	}
	// Without kid: two keys are usable with ES256 (one has no alg): ambiguous.
	if got := verifyReason(t, e.env, signAlg("ES256", e.p256, `{"alg":"ES256","typ":"at+jwt"}`, claims)); got != ReasonAmbiguousKey {
		t.Errorf("kid-less ES256: %q", got)
	}
	// Without kid, RS256: exactly one RSA key.
	if got := verifyReason(t, e.env, signRaw(e.idpKey, `{"alg":"RS256","typ":"at+jwt"}`, claims)); got != "" {
		t.Errorf("kid-less RS256 with one RSA key: %q", got)
	}
}

// TestReviewVerifySignatureDirect covers verifySignature's key and alg
// pairs that configuration keeps from the sidecar path.
func TestReviewVerifySignatureDirect(t *testing.T) {
	const in = "aGVhZGVy.cGF5bG9hZA"
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaK := testRSA(0)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	ok := []struct {
		alg  string
		pub  any
		priv crypto.Signer
	}{
		{"EdDSA", edPub, edPriv},
		{"RS256", &rsaK.PublicKey, rsaK},
		{"RS384", &rsaK.PublicKey, rsaK},
		{"RS512", &rsaK.PublicKey, rsaK},
		{"PS256", &rsaK.PublicKey, rsaK},
		{"PS512", &rsaK.PublicKey, rsaK},
		{"ES256", &p256.PublicKey, p256},
		{"ES512", &p521.PublicKey, p521},
	}
	for _, tc := range ok {
		sig := b64(sigOver(tc.alg, tc.priv, in))
		if err := verifySignature(tc.pub, jose.SignatureAlgorithm(tc.alg), in, sig); err != nil {
			t.Errorf("%s: %v", tc.alg, err)
		}
		if err := verifySignature(tc.pub, jose.SignatureAlgorithm(tc.alg), in+"x", sig); err == nil {
			t.Errorf("%s: another message verifies", tc.alg)
		}
	}
	bad := []struct {
		name string
		alg  string
		pub  any
		sig  []byte
	}{
		{"RS256 signature as PS256", "PS256", &rsaK.PublicKey, sigOver("RS256", rsaK, in)},
		{"PS256 signature as RS256", "RS256", &rsaK.PublicKey, sigOver("PS256", rsaK, in)},
		{"RS256 signature as RS384", "RS384", &rsaK.PublicKey, sigOver("RS256", rsaK, in)},
		{"EdDSA key with ES256", "ES256", edPub, sigOver("EdDSA", edPriv, in)},
		{"RSA key with EdDSA", "EdDSA", &rsaK.PublicKey, sigOver("RS256", rsaK, in)},
		{"RSA key with HS256", "HS256", &rsaK.PublicKey, sigOver("RS256", rsaK, in)},
		{"ES256 key with ES512", "ES512", &p256.PublicKey, sigOver("ES256", p256, in)},
		{"P-521 key with ES256", "ES256", &p521.PublicKey, sigOver("ES512", p521, in)[:64]},
		{"EdDSA short key", "EdDSA", edPub[:31], sigOver("EdDSA", edPriv, in)},
		{"HMAC secret", "HS256", []byte("secret"), []byte("x")},
		{"private key value", "EdDSA", edPriv, sigOver("EdDSA", edPriv, in)},
		{"nil key", "EdDSA", nil, sigOver("EdDSA", edPriv, in)},
	}
	for _, tc := range bad {
		if err := verifySignature(tc.pub, jose.SignatureAlgorithm(tc.alg), in, b64(tc.sig)); !errors.Is(err, errSignature) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestReviewJWKSKeys: what a key set may hold, and which keys are used.
func TestReviewJWKSKeys(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	x := b64(edPub)
	skipped := map[string]string{
		"X25519":            `{"kty":"OKP","crv":"X25519","x":"` + x + `"}`,
		"Ed448":             `{"kty":"OKP","crv":"Ed448","x":"` + b64(make([]byte, 57)) + `"}`,
		"oct":               `{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}`,
		"use enc":           `{"kty":"OKP","crv":"Ed25519","x":"` + x + `","use":"enc"}`,
		"Ed25519 low order": `{"kty":"OKP","crv":"Ed25519","x":"` + b64(append([]byte{1}, make([]byte, 31)...)) + `"}`,
		"RSA e=1":           `{"kty":"RSA","n":"` + b64(testRSA(0).N.Bytes()) + `","e":"AQ"}`,
		"EC point off the curve": `{"kty":"EC","crv":"P-256","x":"` + b64(make([]byte, 32)) + `","y":"` +
			b64(append(make([]byte, 31), 1)) + `"}`,
	}
	for name, k := range skipped {
		keys, err := ParseJWKS([]byte(`{"keys":[` + k + `]}`))
		if err == nil {
			t.Errorf("%s: kept %d keys (%T)", name, len(keys), keys[0].Key)
		}
	}
	// A private key published by mistake is reduced to its public half.
	priv := testRSA(1)
	pj := jwkJSON(t, jose.JSONWebKey{Key: priv, KeyID: "oops"})
	keys, err := ParseJWKS([]byte(`{"keys":[` + pj + `]}`))
	if err != nil || len(keys) != 1 || !keys[0].IsPublic() {
		t.Fatalf("private JWK: %v", err)
	}
	if _, isPub := keys[0].Key.(*rsa.PublicKey); !isPub {
		t.Errorf("private JWK kept as %T", keys[0].Key)
	}
	// A key set with duplicate members is refused as a whole.
	if _, err := ParseJWKS([]byte(`{"keys":[],"keys":[` + pj + `]}`)); err == nil {
		t.Error("duplicate keys member accepted")
	}
}

// TestReviewRSAExponentOne: a key set that publishes e=1 (a broken or
// hostile JWKS) must not let anyone sign: with e=1 the "signature" is the
// encoded digest itself.
func TestReviewRSAExponentOne(t *testing.T) {
	e := newEnv(t, envOpts{})
	n := testRSA(2).N
	weak := `{"kty":"RSA","kid":"weak","alg":"RS256","n":"` + b64(n.Bytes()) + `","e":"AQ"}`
	e.idpJWKS.mu.Lock()
	e.idpJWKS.body = `{"keys":[` + jwkJSON(t, e.idpKey.jwk()) + `,` + weak + `]}`
	e.idpJWKS.mu.Unlock()
	_ = e.sc.verifier.trusts[0].keys.refetch(t.Context(), true)
	h := `{"alg":"RS256","kid":"weak","typ":"at+jwt"}`
	in := b64([]byte(h)) + "." + b64([]byte(mustJSON(e.outerClaims(e.chain()))))
	d := sha256.Sum256([]byte(in))
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	em := make([]byte, (n.BitLen()+7)/8)
	em[1] = 1
	tail := append(prefix, d[:]...)
	for i := 2; i < len(em)-len(tail)-1; i++ {
		em[i] = 0xff
	}
	copy(em[len(em)-len(tail):], tail)
	if got := verifyReason(t, e, in+"."+b64(em)); got == "" {
		t.Fatal("forged with e=1")
	}
}

// TestReviewRSAKeySize: RFC 7518 3.3 wants RSA keys of 2048 bits or more.
func TestReviewRSAKeySize(t *testing.T) {
	e := newEnv(t, envOpts{})
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	k := &signingKey{kid: "small", alg: jose.RS256, priv: small}
	e.idpJWKS.set(e.idpKey, k)
	_ = e.sc.verifier.trusts[0].keys.refetch(t.Context(), true)
	if got := verifyReason(t, e, sign(k, hdr(k, "at+jwt"), e.outerClaims(e.chain()))); got == "" {
		t.Error("a token signed with a 1024-bit RSA key verified")
	}
	if got := verifyReason(t, e, e.outer()); got != "" {
		t.Errorf("2048-bit key beside it: %q", got)
	}
}

// TestReviewJWKAlg: the JWK's own alg must be the token's, exactly.
func TestReviewJWKAlg(t *testing.T) {
	e := newEnv(t, envOpts{})
	k := e.idpKey.jwk()
	k.Algorithm = "RS384"
	k2 := e.idpKey.jwk()
	k2.KeyID, k2.Algorithm = "idp-lower", "rs256"
	setJWKSBody(t, e.idpJWKS, e.sc.verifier.trusts[0].keys, `{"keys":[`+jwkJSON(t, k)+`,`+jwkJSON(t, k2)+`]}`)
	if got := verifyReason(t, e, e.outer()); got != ReasonKeyAlg {
		t.Errorf("JWK alg RS384, token RS256: %q", got)
	}
	h := hdr(e.idpKey, "at+jwt")
	h["kid"] = "idp-lower"
	if got := verifyReason(t, e, sign(e.idpKey, h, e.outerClaims(e.chain()))); got != ReasonKeyAlg {
		t.Errorf("JWK alg rs256, token RS256: %q", got)
	}
	// Kid-less: no key usable with RS256.
	delete(h, "kid")
	if got := verifyReason(t, e, sign(e.idpKey, h, e.outerClaims(e.chain()))); got != ReasonUnknownKid {
		t.Errorf("kid-less, no usable key: %q", got)
	}
}

// TestReviewDuplicateKid: two keys share a kid (a rotation published badly,
// or a hostile mirror); a token signed by either must verify or fail, never
// verify with the other's signature.
func TestReviewDuplicateKid(t *testing.T) {
	e := newEnv(t, envOpts{})
	other := &signingKey{kid: "idp-1", alg: jose.RS256, priv: testRSA(2)}
	e.idpJWKS.set(e.idpKey, other)
	_ = e.sc.verifier.trusts[0].keys.refetch(t.Context(), true)
	attacker := &signingKey{kid: "idp-1", alg: jose.RS256, priv: testRSA(1)}
	if got := verifyReason(t, e, sign(attacker, hdr(attacker, "at+jwt"), e.outerClaims(e.chain()))); got != ReasonSignature {
		t.Errorf("foreign key: %q", got)
	}
	// DESIGN.md: verify against every key; with a shared kid, either key's
	// token should verify.
	for i, k := range []*signingKey{e.idpKey, other} {
		if got := verifyReason(t, e, sign(k, hdr(k, "at+jwt"), e.outerClaims(e.chain()))); got != "" {
			t.Errorf("key %d of a shared kid: %q", i, got)
		}
	}
}

// TestReviewTimes: leeway at its exact edges, for outer and inner tokens.
func TestReviewTimes(t *testing.T) {
	e := newEnv(t, envOpts{})
	now := e.clock.Now()
	outer := func(f func(c map[string]any)) string {
		c := e.outerClaims(e.chain())
		f(c)
		return sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c)
	}
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	for _, tc := range []struct {
		name string
		f    func(c map[string]any)
		want Reason
	}{
		{"exp now-30s: the leeway's end", func(c map[string]any) { c["exp"] = at(-30 * time.Second) }, ReasonExpired},
		{"exp now-29s", func(c map[string]any) { c["exp"] = at(-29 * time.Second) }, ""},
		{"exp now", func(c map[string]any) { c["exp"] = at(0) }, ""},
		{"exp 0", func(c map[string]any) { c["exp"] = 0 }, ReasonExpired},
		{"exp -0", func(c map[string]any) { c["exp"] = json.RawMessage("-0") }, ReasonExpired},
		{"exp 1e-400", func(c map[string]any) { c["exp"] = json.RawMessage("1e-400") }, ReasonExpired},
		{"exp null", func(c map[string]any) { c["exp"] = nil }, ReasonMissingClaim},
		{"nbf now+30s", func(c map[string]any) { c["nbf"] = at(30 * time.Second) }, ""},
		{"nbf now+31s", func(c map[string]any) { c["nbf"] = at(31 * time.Second) }, ReasonNotYetValid},
		{"iat far in the future (outer: not checked)", func(c map[string]any) { c["iat"] = at(time.Hour) }, ""},
	} {
		if got := verifyReason(t, e, outer(tc.f)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// Minter tokens presented directly (orders' own): iat required, not past
	// now+leeway.
	for _, tc := range []struct {
		name string
		f    func(c map[string]any)
		want Reason
	}{
		{"iat now+30s", func(c map[string]any) { c["iat"] = at(30 * time.Second) }, ""},
		{"iat now+31s", func(c map[string]any) { c["iat"] = at(31 * time.Second) }, ReasonIssuedInFuture},
		{"iat missing", func(c map[string]any) { delete(c, "iat") }, ReasonMissingClaim},
		{"iat null", func(c map[string]any) { c["iat"] = nil }, ReasonMissingClaim},
		{"iat string", func(c map[string]any) { c["iat"] = "1" }, ReasonClaimType},
		{"exp missing", func(c map[string]any) { delete(c, "exp") }, ReasonMissingClaim},
		{"jti missing", func(c map[string]any) { delete(c, "jti") }, ReasonMissingClaim},
		{"jti empty", func(c map[string]any) { c["jti"] = "" }, ReasonMissingClaim},
	} {
		c := e.innerClaims("https://orders.test", "orders:read", time.Minute)
		tc.f(c)
		if got := verifyReason(t, e, e.mintInner(c)); got != tc.want {
			t.Errorf("minter %s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// A result is cached no longer than the earliest exp: once past it, the
	// token is verified again (and refused past the leeway).
	c := e.outerClaims(e.chain())
	c["exp"] = at(time.Minute)
	tok := sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c)
	if got := verifyReason(t, e, tok); got != "" {
		t.Fatal(got)
	}
	e.clock.Advance(time.Minute + 30*time.Second)
	if got := verifyReason(t, e, tok); got != ReasonExpired {
		t.Errorf("past exp+leeway: %q", got)
	}
	// An inner token expired (beyond leeway) inside a valid outer: renew.
	e2 := newEnv(t, envOpts{})
	m := e2.chain()
	ic := e2.innerClaims("https://orders.test", "orders:read", time.Minute)
	ic["exp"] = e2.clock.Now().Add(-31 * time.Second).Unix()
	m["orders"] = e2.mintInner(ic)
	_, err := e2.sc.verifier.Verify(t.Context(), sign(e2.idpKey, hdr(e2.idpKey, "at+jwt"), e2.outerClaims(m)))
	var f *Failure
	if !errors.As(err, &f) || f.Reason != ReasonInnerExpired || !f.Inner {
		t.Errorf("expired inner: %v", err)
	}
}

// TestReviewEmbeddedMap: where the inner token comes from, and of which type.
func TestReviewEmbeddedMap(t *testing.T) {
	e := newEnv(t, envOpts{})
	outerWith := func(f func(c map[string]any)) string {
		c := e.outerClaims(e.chain())
		f(c)
		return sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c)
	}
	chain := e.chain()
	for _, tc := range []struct {
		name string
		f    func(c map[string]any)
		want Reason
	}{
		{"map an array", func(c map[string]any) { c["embedded_tokens"] = []string{chain["orders"].(string)} }, ReasonEmbeddedType},
		{"map a number", func(c map[string]any) { c["embedded_tokens"] = 1 }, ReasonEmbeddedType},
		{"map true", func(c map[string]any) { c["embedded_tokens"] = true }, ReasonEmbeddedType},
		{"orders an object", func(c map[string]any) {
			c["embedded_tokens"] = map[string]any{"orders": map[string]any{"token": chain["orders"]}}
		}, ReasonEmbeddedType},
		{"orders an array", func(c map[string]any) {
			c["embedded_tokens"] = map[string]any{"orders": []any{chain["orders"]}}
		}, ReasonEmbeddedType},
		{"another API's value of the wrong type", func(c map[string]any) {
			c["embedded_tokens"] = map[string]any{"orders": chain["orders"], "billing": 1}
		}, ReasonEmbeddedType},
		{"billing's token under orders", func(c map[string]any) {
			c["embedded_tokens"] = map[string]any{"orders": chain["billing"]}
		}, ReasonAudience},
		{"profile's token under orders", func(c map[string]any) {
			c["embedded_tokens"] = map[string]any{"orders": chain["profile"]}
		}, ReasonAudience},
		{"orders null", func(c map[string]any) { c["embedded_tokens"] = map[string]any{"orders": nil} }, ReasonMalformed},
		{"orders empty", func(c map[string]any) { c["embedded_tokens"] = map[string]any{"orders": ""} }, ReasonMalformed},
		{"outer token as its own inner", func(c map[string]any) {
			c["embedded_tokens"] = map[string]any{"orders": e.outer()}
		}, ReasonAlgNotAllowed},
		{"map null: no map", func(c map[string]any) { c["embedded_tokens"] = nil }, ReasonNoEmbeddedMap},
		{"map absent: no map", func(c map[string]any) { delete(c, "embedded_tokens") }, ReasonNoEmbeddedMap},
		{"case variant of the API name", func(c map[string]any) {
			c["embedded_tokens"] = map[string]any{"Orders": chain["orders"]}
		}, ReasonPredatesAPI},
		{"case variant of the claim", func(c map[string]any) {
			delete(c, "embedded_tokens")
			c["Embedded_Tokens"] = map[string]any{"orders": chain["orders"]}
		}, ReasonNoEmbeddedMap},
		{"no scope for orders: 403", func(c map[string]any) {
			delete(c, "embedded_tokens")
			c["scope"] = "billing:read"
		}, ReasonNoScope},
	} {
		if got := verifyReason(t, e, outerWith(tc.f)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// An escaped member name is the same name (as encoding/json reads it).
	plain := mustJSON(e.outerClaims(e.chain()))
	esc := strings.Replace(plain, `"orders":`, `"\u006frders":`, 1)
	if got := verifyReason(t, e, signRaw(e.idpKey, mustJSON(hdr(e.idpKey, "at+jwt")), esc)); got != "" {
		t.Errorf("escaped API name: %q", got)
	}
	// The inner token's sub and client_id must equal the outer token's, byte
	// for byte.
	for _, tc := range []struct {
		name string
		f    func(c map[string]any)
	}{
		{"sub with NUL", func(c map[string]any) { c["sub"] = "alice\x00" }},
		{"sub case", func(c map[string]any) { c["sub"] = "Alice" }},
		{"sub missing", func(c map[string]any) { delete(c, "sub") }},
		{"client_id other", func(c map[string]any) { c["client_id"] = "app2" }},
	} {
		ic := e.innerClaims("https://orders.test", "orders:read", time.Minute)
		tc.f(ic)
		m := e.chain()
		m["orders"] = e.mintInner(ic)
		got := verifyReason(t, e, sign(e.idpKey, hdr(e.idpKey, "at+jwt"), e.outerClaims(m)))
		if got != ReasonSubjectMismatch && got != ReasonMissingClaim {
			t.Errorf("inner %s: %q", tc.name, got)
		}
	}
	// Inner aud: exactly this API, a string or a one-element array.
	for _, tc := range []struct {
		aud  any
		want Reason
	}{
		{[]string{"https://orders.test"}, ""},
		{[]string{"https://orders.test", "https://billing.test"}, ReasonAudience},
		{[]string{}, ReasonAudience},
		{nil, ReasonAudience},
		{"https://orders.test/", ReasonAudience},
		{"HTTPS://orders.test", ReasonAudience},
	} {
		ic := e.innerClaims("https://orders.test", "orders:read", time.Minute)
		ic["aud"] = tc.aud
		m := e.chain()
		m["orders"] = e.mintInner(ic)
		if got := verifyReason(t, e, sign(e.idpKey, hdr(e.idpKey, "at+jwt"), e.outerClaims(m))); got != tc.want {
			t.Errorf("inner aud %v: got %q, want %q", tc.aud, got, tc.want)
		}
	}
}

// TestReviewHydraClaimPath: the trust's claim is a path of segments, never a
// member whose name holds the dot.
func TestReviewHydraClaimPath(t *testing.T) {
	e := newEnv(t, envOpts{})
	hydra := func(f func(c map[string]any)) string {
		c := e.outerClaims(nil)
		delete(c, "embedded_tokens")
		c["iss"] = hydraIssuer
		c["ext"] = map[string]any{"embedded_tokens": e.chain()}
		f(c)
		return sign(e.hydraKey, hdr(e.hydraKey, "JWT"), c)
	}
	for _, tc := range []struct {
		name string
		f    func(c map[string]any)
		want Reason
	}{
		{"nested", func(c map[string]any) {}, ""},
		{"a member named with the dot", func(c map[string]any) {
			c["ext.embedded_tokens"] = c["ext"].(map[string]any)["embedded_tokens"]
			delete(c, "ext")
		}, ReasonNoEmbeddedMap},
		{"top-level embedded_tokens beside an empty ext", func(c map[string]any) {
			c["embedded_tokens"] = c["ext"].(map[string]any)["embedded_tokens"]
			c["ext"] = map[string]any{}
		}, ReasonNoEmbeddedMap},
		{"ext a string", func(c map[string]any) { c["ext"] = "x" }, ReasonEmbeddedType},
		{"ext an array", func(c map[string]any) { c["ext"] = []any{map[string]any{"embedded_tokens": e.chain()}} }, ReasonEmbeddedType},
		{"ext null", func(c map[string]any) { c["ext"] = nil }, ReasonNoEmbeddedMap},
		{"map one level deeper", func(c map[string]any) {
			c["ext"] = map[string]any{"ext": c["ext"]}
		}, ReasonNoEmbeddedMap},
	} {
		if got := verifyReason(t, e, hydra(tc.f)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestReviewMinterOuter: minter tokens presented to a sidecar.
func TestReviewMinterOuter(t *testing.T) {
	e := newEnv(t, envOpts{})
	// billing does not call orders: billing's token is no outer token here,
	// even holding a valid orders token.
	bc := e.innerClaims("https://billing.test", "billing:read", time.Minute)
	bc["embedded_tokens"] = map[string]any{"orders": e.chain()["orders"]}
	if got := verifyReason(t, e, e.mintInner(bc)); got != ReasonNotCaller {
		t.Errorf("billing's token at orders: %q", got)
	}
	// A minter token with two audiences (orders and a caller) is refused.
	c := e.innerClaims("https://orders.test", "orders:read", time.Minute)
	c["aud"] = []string{"https://orders.test", "https://billing.test"}
	if got := verifyReason(t, e, e.mintInner(c)); got != ReasonAudience {
		t.Errorf("two audiences: %q", got)
	}
	// The minter's own iss with a trust's typ and key: refused.
	c = e.innerClaims("https://orders.test", "orders:read", time.Minute)
	if got := verifyReason(t, e, sign(e.minter, hdr(e.minter, "JWT"), c)); got != ReasonTyp {
		t.Errorf("minter token typ JWT: %q", got)
	}

	// At billing: orders' token (orders calls billing) carries billing's.
	eb := newEnv(t, envOpts{api: "billing"})
	chain := eb.chain()
	r, err := eb.sc.verifier.Verify(t.Context(), chain["orders"].(string))
	if err != nil || r.Source != SourceMinter || r.InnerClaims.Audience[0] != "https://billing.test" {
		t.Fatalf("orders' token at billing: %v", err)
	}
	// ...but not a billing token of another subject under orders' token.
	oc := eb.innerClaims("https://orders.test", "orders:read", time.Minute)
	bc = eb.innerClaims("https://billing.test", "billing:read", time.Minute)
	bc["sub"] = "mallory"
	oc["embedded_tokens"] = map[string]any{"billing": eb.mintInner(bc)}
	if got := verifyReason(t, eb, eb.mintInner(oc)); got != ReasonSubjectMismatch {
		t.Errorf("other subject nested: %q", got)
	}
	// A caller's token never gets an exchange: the map holds no billing.
	oc = eb.innerClaims("https://orders.test", "orders:read billing:read", time.Minute)
	if got := verifyReason(t, eb, eb.mintInner(oc)); got != ReasonPredatesAPI {
		t.Errorf("caller's token without ours: %q", got)
	}

	// ledger is not exposed: its own token presented directly is 403, an
	// idp outer token is 403, billing's token carrying it is fine.
	el := newEnv(t, envOpts{api: "ledger"})
	lc := el.innerClaims("https://ledger.test", "ledger:append", time.Minute)
	if got := verifyReason(t, el, el.mintInner(lc)); got != ReasonNotExposed {
		t.Errorf("ledger direct: %q", got)
	}
	if got := verifyReason(t, el, el.outer()); got != ReasonNotExposed {
		t.Errorf("ledger with an outer token: %q", got)
	}
	if got := verifyReason(t, el, el.chain()["billing"].(string)); got != "" {
		t.Errorf("ledger via billing: %q", got)
	}
	// orders' token holds billing's which holds ledger's, but orders does not
	// call ledger: orders' token is no outer token at ledger.
	if got := verifyReason(t, el, el.chain()["orders"].(string)); got != ReasonNotCaller {
		t.Errorf("ledger via orders: %q", got)
	}
}

// TestReviewRouteOnCacheHit: route scopes are checked on every request, the
// cached ones included.
func TestReviewRouteOnCacheHit(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.outer() // orders' inner token has orders:read only
	if rec := e.get("/orders/1", tok); rec.Code != 200 {
		t.Fatalf("GET: %d", rec.Code)
	}
	for range 2 {
		h := map[string][]string{"Authorization": {"Bearer " + tok}}
		rec := e.do("POST", "/orders/admin/x", h)
		checkFail(t, e, rec, wantFail{status: 403, code: "insufficient_scope", scope: "orders:write", reason: ReasonRouteScope})
	}
}

// TestReviewCacheFlushRace: a verification that read the old keys must not
// put its result in the cache after a key change flushed it; else a token
// signed by a key just withdrawn stays trusted until its exp.
func TestReviewCacheFlushRace(t *testing.T) {
	e := newEnv(t, envOpts{})
	v := e.sc.verifier
	old := e.minter
	fresh := newEdKey("m-2")
	ks := v.minter
	// orders' own minter tokens with a long exp, each distinct.
	mk := func() string {
		return e.mintInner(e.innerClaims("https://orders.test", "orders:read", 24*time.Hour))
	}
	const workers, per = 8, 400
	toks := make([][]string, workers)
	for i := range toks {
		for range per {
			toks[i] = append(toks[i], mk())
		}
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range workers {
		wg.Go(func() {
			<-start
			for _, tok := range toks[i] {
				_, _ = v.Verify(context.Background(), tok)
			}
		})
	}
	close(start)
	time.Sleep(2 * time.Millisecond)
	e.mjwks.set(fresh)
	if err := ks.refetch(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	_ = old
	stale := 0
	for i := range toks {
		for _, tok := range toks[i] {
			k := tokenKey(tok)
			if _, ok := v.cache.get(&k, e.clock.Now()); ok {
				stale++
			}
		}
	}
	if stale > 0 {
		t.Errorf("%d results verified with the withdrawn key are cached after the flush", stale)
	}
}

// TestReviewCachePutAfterFlush is TestReviewCacheFlushRace made
// deterministic: a value computed before a flush is not cached after it.
func TestReviewCachePutAfterFlush(t *testing.T) {
	c := newTokenCache(16)
	k := tokenKey("t")
	gen := c.generation()
	c.flush()
	c.putIf(&k, &Result{}, t0.Add(time.Hour), gen)
	if _, ok := c.get(&k, t0); ok {
		t.Fatal("stale result cached after a flush")
	}
	c.putIf(&k, &Result{}, t0.Add(time.Hour), c.generation())
	if _, ok := c.get(&k, t0); !ok {
		t.Fatal("fresh result not cached")
	}
	var nilCache *tokenCache
	nilCache.putIf(&k, &Result{}, t0, nilCache.generation())
	nilCache.flush()
}

// TestReviewScopesDeduplicated: past the pairwise limit the scopes are
// still in order and without duplicates.
func TestReviewScopesDeduplicated(t *testing.T) {
	var in, want []string
	for i := range 40 {
		in = append(in, fmt.Sprintf("s%d", i), fmt.Sprintf("s%d", i/2))
	}
	seen := map[string]bool{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			want = append(want, s)
		}
	}
	scp, _ := json.Marshal(append([]string{"s0", "", "x"}, in...))
	pl := `{"scope":"` + strings.Join(in, " ") + ` s39 x","scp":` + string(scp) + `}`
	var c Claims
	if ok, _ := decodeClaims([]byte(pl), &c, nil); !ok {
		t.Fatal("refused")
	}
	want = append(want, "x")
	if fmt.Sprint(c.Scopes) != fmt.Sprint(want) {
		t.Errorf("scopes:\n got %v\nwant %v", c.Scopes, want)
	}
}

// BenchmarkPreSignatureCost: everything parseToken does runs before any
// signature is checked, on whatever a client sends. Each hostile payload of
// the largest size is measured beside a plain one of the same size
// (compare the ns/op of "plain" with the others: they were quadratic —
// 11 ms for many scopes, 150-250 ms for many escaped member names — before
// the review fixes, and are now within a small factor of "plain").
func BenchmarkPreSignatureCost(b *testing.B) {
	const size = 12000 // about what max_token_bytes (16384) leaves for a payload
	h := b64([]byte(`{"alg":"RS256","kid":"k","typ":"at+jwt"}`))
	fill := func(f func(i int) string, sep string) string {
		var parts []string
		n := 0
		for i := 0; n < size; i++ {
			parts = append(parts, f(i))
			n += len(parts[i]) + len(sep)
		}
		return strings.Join(parts, sep)
	}
	for _, tc := range []struct{ name, payload string }{
		{"plain", `{"sub":"` + strings.Repeat("a", size) + `","aud":"x","exp":1}`},
		{"many scopes", `{"scope":"` + fill(func(i int) string { return fmt.Sprintf("%x", i) }, " ") + `"}`},
		{"many scp", `{"scp":[` + fill(func(i int) string { return fmt.Sprintf(`"%x"`, i) }, ",") + `]}`},
		{"many escaped aud", `{"aud":[` + fill(func(int) string { return `"\u0061"` }, ",") + `]}`},
		{"many plain members", "{" + fill(func(i int) string { return fmt.Sprintf(`"%x":0`, i) }, ",") + "}"},
		{"many nested objects", `{"a":[` + fill(func(int) string { return `{"b":{"c":[1]}}` }, ",") + `]}`},
		{"many escaped members", "{" + fill(func(i int) string { return fmt.Sprintf(`"\u0061%x":0`, i) }, ",") + "}"},
		{"many non-ASCII members", "{" + fill(func(i int) string { return fmt.Sprintf(`"é%x":0`, i) }, ",") + "}"},
	} {
		tok := h + "." + b64([]byte(tc.payload)) + ".c2ln"
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				_ = parseToken(tok, new(parsed))
			}
		})
	}
}
