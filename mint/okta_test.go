package mint_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/mint"
)

// oktaHCL is the test catalog with the Okta sample's scope names (profile
// instead of profile:read) and the okta endpoint on.
func oktaHCL(src string) string {
	return strings.NewReplacer(`"profile:read"`, `"profile"`, "  generic       = true\n", "  generic       = true\n  okta          = true\n").Replace(src)
}

// oktaReply is the hook's answer to Okta, decoded.
type oktaReply struct {
	Commands []struct {
		Type  string `json:"type"`
		Value []struct {
			Op    string          `json:"op"`
			Path  string          `json:"path"`
			Value json.RawMessage `json:"value"`
		} `json:"value"`
	} `json:"commands"`
	Error *struct {
		ErrorSummary string `json:"errorSummary"`
	} `json:"error"`
}

func decodeOkta(t *testing.T, status int, body []byte) oktaReply {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d: Okta issues the token unmodified on anything but 200: %s", status, body)
	}
	var r oktaReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	return r
}

// TestOktaTokenHook: Okta's documented sample request (testdata/okta,
// SOURCES.md) gets a com.okta.access.patch command shaped like Okta's
// documented "add a claim" sample, adding the embedded map: sub, cid, the
// granted scopes, the lifetime less OktaExpirySlack, and the profile claims
// of the ID token.
func TestOktaTokenHook(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	e := newHookEnv(t, loadHCL(t, oktaHCL(testHCL("k1", "scope", k1)), k1))
	status, body := e.post("/hooks/okta", testAPIKey, readFixture(t, "okta/token-hook-request.json"))
	r := decodeOkta(t, status, body)
	if r.Error != nil || len(r.Commands) != 1 || len(r.Commands[0].Value) != 1 {
		t.Fatalf("answer: %+v", r)
	}
	var sample oktaReply
	if err := json.Unmarshal(readFixture(t, "okta/token-hook-response-add.json"), &sample); err != nil {
		t.Fatal(err)
	}
	want := sample.Commands[1] // the documented com.okta.access.patch
	got := r.Commands[0]
	if got.Type != want.Type || got.Value[0].Op != want.Value[0].Op || !strings.HasPrefix(want.Value[0].Path, "/claims/") {
		t.Fatalf("command %s %s, want the sample's %s %s", got.Type, got.Value[0].Op, want.Type, want.Value[0].Op)
	}
	if got.Value[0].Path != "/claims/embedded_tokens" {
		t.Errorf("path %q", got.Value[0].Path)
	}
	var tokens map[string]string
	if err := json.Unmarshal(got.Value[0].Value, &tokens); err != nil {
		t.Fatal(err)
	}
	const sub, client = "administrator1@clouditude.net", "customClientIdNative"
	bound := testNow.Add(3600e9 - mint.OktaExpirySlack).Unix()
	gotTree := fetchJWKS(t, e.pub).describe(tokens, sub, client, bound)
	wantTree := map[string]string{
		"profile": `profile scope="profile" exp=+600 email="administrator1@clouditude.net" name="Add-Min O'Cloudy Tud"`,
		"status":  `status exp=+300`,
	}
	if !equalMaps(gotTree, wantTree) {
		t.Errorf("tokens\n got %v\nwant %v", gotTree, wantTree)
	}
	if n := e.metric("embedtoken_hook_requests_total", "endpoint", "okta", "outcome", "ok"); n != 1 {
		t.Errorf("okta ok = %v", n)
	}
}

// TestOktaFailures: every failure is a 200 with Okta's error object (Okta
// then denies the token), never commands, never an input value.
func TestOktaFailures(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	sample := string(readFixture(t, "okta/token-hook-request.json"))
	e := newHookEnv(t, loadHCL(t, oktaHCL(testHCL("k1", "scope", k1)), k1))
	off := newHookEnv(t, loadHCL(t, testHCL("k1", "scope", k1), k1))
	edit := func(old, new string) []byte {
		if !strings.Contains(sample, old) {
			t.Fatalf("%q not in the sample", old)
		}
		return []byte(strings.Replace(sample, old, new, 1))
	}
	tests := []struct {
		name   string
		env    *hookEnv
		key    string
		body   []byte
		reason string
		want   string // in errorSummary
	}{
		{"no api key", e, "", []byte(sample), "unauthorized", "API key"},
		{"disabled", off, testAPIKey, []byte(sample), "bad_request", "not enabled"},
		{"duplicate sub", e, testAPIKey, edit(`"sub": "administrator1@clouditude.net",`, `"sub": "administrator1@clouditude.net", "sub": "admin",`), "bad_request", "duplicate"},
		{"oversized", e, testAPIKey, edit(`"locale": "en"`, `"locale": "`+strings.Repeat("x", 70<<10)+`"`), "too_large", "over"},
		{"not JSON", e, testAPIKey, []byte(`{"eventType":`), "bad_request", "JSON"},
		{"wrong event type", e, testAPIKey, edit(`"com.okta.oauth2.tokens.transform"`, `"com.okta.saml.tokens.transform"`), "denied", "eventType"},
		{"ID token only", e, testAPIKey, []byte(`{"eventType":"com.okta.oauth2.tokens.transform","data":{}}`), "denied", "data.access"},
		{"client mismatch", e, testAPIKey, edit(`"cid": "customClientIdNative"`, `"cid": "other"`), "denied", "cid"},
		{"no sub", e, testAPIKey, edit(`"sub": "administrator1@clouditude.net",`, ``), "denied", "sub"},
		{"sub not a string", e, testAPIKey, edit(`"sub": "administrator1@clouditude.net",`, `"sub": 7,`), "denied", "sub"},
		{"no lifetime", e, testAPIKey, edit(`"token": {
        "lifetime": {
          "expiration": 3600
        }
      },
      "scopes"`, `"scopes"`), "denied", "lifetime"},
		{"lifetime a string", e, testAPIKey, edit(`"scopes": {`, `"lifetime": {"expiration": "3600"}, "scopes": {`), "bad_request", "expiration"},
		{"scopes not an object", e, testAPIKey, []byte(`{"eventType":"com.okta.oauth2.tokens.transform","data":{"access":{"scopes":["profile"]}}}`), "bad_request", "scopes"},
		{"reserved claim copied", e, testAPIKey, edit(`"name": "Add-Min O'Cloudy Tud",`, `"name": {"deep": "`+strings.Repeat("n", 2000)+`"},`), "denied", "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.env.metric("embedtoken_hook_requests_total", "endpoint", "okta", "outcome", tc.reason)
			status, body := tc.env.post("/hooks/okta", tc.key, tc.body)
			r := decodeOkta(t, status, body)
			if r.Error == nil || len(r.Commands) != 0 {
				t.Fatalf("answer %+v: want an error object and no commands", r)
			}
			if !strings.Contains(r.Error.ErrorSummary, tc.want) {
				t.Errorf("errorSummary %q does not mention %q", r.Error.ErrorSummary, tc.want)
			}
			for _, secret := range []string{"admin\"", "other", strings.Repeat("x", 20), testAPIKey} {
				if strings.Contains(r.Error.ErrorSummary, secret) {
					t.Errorf("errorSummary echoes input %q", secret)
				}
			}
			if n := tc.env.metric("embedtoken_hook_requests_total", "endpoint", "okta", "outcome", tc.reason); n != before+1 {
				t.Errorf("outcome %s counted %v times, want 1", tc.reason, n-before)
			}
		})
	}
	if bytes.Contains([]byte(sample), []byte("embedded_tokens")) {
		t.Fatal("the sample already holds the claim")
	}
}
