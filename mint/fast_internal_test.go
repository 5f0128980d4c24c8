package mint

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/catalog"
)

// TestEdSignerMatchesGoJose: the direct Ed25519 signer writes exactly what
// go-jose writes for the same key and payload, and go-jose verifies it with
// the header members DESIGN.md's Tokens section names.
func TestEdSignerMatchesGoJose(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	js, err := newSigner("k1", jose.EdDSA, key)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := newEdSigner(js, jose.EdDSA, key)
	if err != nil || ed == nil {
		t.Fatalf("newEdSigner = %v, %v", ed, err)
	}
	for _, payload := range []string{
		`{}`,
		`{"iss":"https://minter.test","sub":"u"}`,
		`{"a":"` + strings.Repeat("x", 1) + `"}`,
		`{"a":"` + strings.Repeat("é<>&", 700) + `"}`,
		`{"b":"` + strings.Repeat("y", 4097) + `"}`,
	} {
		jws, err := js.Sign([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		want, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		got := ed.sign([]byte(payload))
		if got != want {
			t.Errorf("payload of %d bytes:\n got %.80s...\nwant %.80s...", len(payload), got, want)
		}
		parsed, err := jose.ParseSigned(got, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		h := parsed.Signatures[0].Protected
		if h.KeyID != "k1" || h.Algorithm != "EdDSA" || h.ExtraHeaders["typ"] != typATJWT || len(h.ExtraHeaders) != 1 {
			t.Errorf("header = kid %q alg %q extra %v", h.KeyID, h.Algorithm, h.ExtraHeaders)
		}
		out, err := parsed.Verify(key.Public())
		if err != nil || string(out) != payload {
			t.Errorf("verify: %v, payload equal %v", err, string(out) == payload)
		}
	}
}

// TestEdSignerOnlyEd25519: other keys keep go-jose's signer.
func TestEdSignerOnlyEd25519(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	js, err := newSigner("k1", jose.ES256, k)
	if err != nil {
		t.Fatal(err)
	}
	if ed, err := newEdSigner(js, jose.ES256, k); ed != nil || err != nil {
		t.Errorf("newEdSigner(ES256) = %v, %v; want nil, nil", ed, err)
	}
	if ed, err := newEdSigner(js, jose.ES256, any(ed25519.PrivateKey(make([]byte, 64)))); ed != nil || err != nil {
		t.Errorf("newEdSigner(Ed25519 key, alg ES256) = %v, %v; want nil, nil", ed, err)
	}
}

func TestMapJSONLen(t *testing.T) {
	for _, m := range []map[string]string{
		{},
		{"orders": "a.b.c"},
		{"orders": "a.b.c", "billing": "d.e.f"},
		{"qu\"ote": "x", "back\\slash": "y", "ctl\x01": "z", "ünï": "w", "bad\xff": "v"},
	} {
		if got, want := mapJSONLen(m), len(mapJSON(m)); got != want {
			t.Errorf("mapJSONLen(%q) = %d, want %d", m, got, want)
		}
	}
}

// TestHydraAnswerMatchesEncodingJSON: the hand-written answer is what
// encoding/json (without HTML escaping) writes for hydraResponse.
func TestHydraAnswerMatchesEncodingJSON(t *testing.T) {
	tokens := map[string]string{"orders": "a.b.c", "profile": "d.e.f"}
	for i, tc := range []struct {
		extra map[string]json.RawMessage
		idExt json.RawMessage
	}{
		{nil, json.RawMessage(`{}`)},
		{map[string]json.RawMessage{}, json.RawMessage(`{ "a" : [1, 2] }`)},
		{map[string]json.RawMessage{"embedded_tokens": json.RawMessage(`{"old":"x.y.z"}`)}, json.RawMessage(`{}`)},
		{map[string]json.RawMessage{
			"zeta": json.RawMessage(` "<b>&</b>" `), "alpha": json.RawMessage("{\n \"n\": null\n}"),
			"qu\"ote": json.RawMessage(`1`), "ünï": json.RawMessage(`true`), "bad\xff": json.RawMessage(`"v"`),
			"embedded_tokenz": json.RawMessage(`[]`), "Embedded_tokens": json.RawMessage(`0`),
		}, json.RawMessage(`{"tenant":"acme"}`)},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var out hydraResponse
			out.Session.AccessToken = map[string]json.RawMessage{"embedded_tokens": mapJSON(tokens)}
			for k, v := range tc.extra {
				if k != "embedded_tokens" {
					out.Session.AccessToken[k] = v
				}
			}
			out.Session.IDToken = tc.idExt
			want, err := marshalCompact(out)
			if err != nil {
				t.Fatal(err)
			}
			got, err := hydraAnswer(tc.extra, "embedded_tokens", tokens, tc.idExt)
			if err != nil || string(got) != string(want) {
				t.Errorf("hydraAnswer = %s, %v\nwant %s", got, err, want)
			}
		})
	}
	if _, err := hydraAnswer(map[string]json.RawMessage{"a": json.RawMessage(`{`)}, "embedded_tokens", tokens, json.RawMessage(`{}`)); err == nil {
		t.Error("hydraAnswer with a value that is not JSON: no error")
	}
}

// TestReadBody: readBody reads what io.ReadAll reads, whatever the
// announced length says, and passes read errors on.
func TestReadBody(t *testing.T) {
	body := strings.Repeat("0123456789", 300)
	for _, tc := range []struct {
		name        string
		r           io.Reader
		size, limit int64
		want        string
		wantErr     bool
	}{
		{"announced", strings.NewReader(body), int64(len(body)), 1 << 20, body, false},
		{"unknown", strings.NewReader(body), -1, 1 << 20, body, false},
		{"announced too short", strings.NewReader(body), 10, 1 << 20, body, false},
		{"announced too long", strings.NewReader(body), 1 << 19, 1 << 20, body, false},
		{"announced over the preallocation", strings.NewReader(body + strings.Repeat("x", readBodyPrealloc)), readBodyPrealloc + 3000, 1 << 20, body + strings.Repeat("x", readBodyPrealloc), false},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader(body)), int64(len(body)), 1 << 20, body, false},
		{"data and EOF together", iotest.DataErrReader(strings.NewReader(body)), -1, 1 << 20, body, false},
		{"empty", strings.NewReader(""), 0, 1 << 20, "", false},
		{"error", iotest.TimeoutReader(strings.NewReader(body)), int64(len(body)), 1 << 20, "", true},
		{"over the limit", http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(body)), 100), int64(len(body)), 100, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(tc.r, tc.size, tc.limit)
			if (err != nil) != tc.wantErr || (!tc.wantErr && string(got) != tc.want) {
				t.Errorf("readBody = %d bytes, %v; want %d bytes, error %v", len(got), err, len(tc.want), tc.wantErr)
			}
		})
	}
}

// TestKeyRingSigner: the key ring signs Ed25519 keys directly and other
// keys with go-jose, and both sign tokens go-jose verifies.
func TestKeyRingSigner(t *testing.T) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alg    jose.SignatureAlgorithm
		key    crypto.Signer
		direct bool
	}{
		{jose.EdDSA, ed, true},
		{jose.ES256, ec, false},
	} {
		m := &catalog.Minter{ActiveKey: "k1", SigningKeys: []*catalog.SigningKey{{ID: "k1", Algorithm: tc.alg, Private: tc.key}}}
		ring, err := newKeyRing(m)
		if err != nil {
			t.Fatal(err)
		}
		if (ring.ed != nil) != tc.direct {
			t.Errorf("%s: direct signer %v, want %v", tc.alg, ring.ed != nil, tc.direct)
		}
		tok, err := ring.sign([]byte(`{"sub":"u"}`))
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{tc.alg})
		if err != nil {
			t.Fatal(err)
		}
		if out, err := parsed.Verify(tc.key.Public()); err != nil || string(out) != `{"sub":"u"}` {
			t.Errorf("%s: verify: %v", tc.alg, err)
		}
	}
}
