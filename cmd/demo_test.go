package cmd

import (
	"strings"
	"testing"
)

// TestDemo runs `embedtoken demo` on the shipped example in-process: it
// must exit 0 and show every hop receiving only its own token, a tampered
// token refused with 401 and an ungranted API with 403.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dozen loopback servers")
	}
	code, stdout, stderr := run(t, "demo", "--config", "../hcl")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"orders received a", "aud=https://orders.internal", `scope="orders:read orders:write"`,
		"billing received a", `scope="billing:charge"`,
		"ledger received a", "inventory received a",
		"No service ever received the outer token",
		"401 Unauthorized", `error="invalid_token"`,
		"403 Forbidden", `error="insufficient_scope"`, `scope="profile:read"`,
		`error_description="token predates this API: renew it"`,
		"at a profile sidecar with an exchange block: 200 OK", `act={"sub":"profile-sidecar"}`,
		"Phantom tokens", "introspected it (RFC 7662) and forwarded only the inner token: 200 OK",
		"an opaque token the issuer never issued (or revoked): 401 Unauthorized",
		"OK",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
}
