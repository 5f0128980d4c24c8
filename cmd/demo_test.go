package cmd

import (
	"strings"
	"testing"
	"time"

	"github.com/embedtoken/embedtoken/catalog"
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

func TestShortDuration(t *testing.T) {
	for in, want := range map[time.Duration]string{
		time.Hour: "1h", 5 * time.Minute: "5m", 90 * time.Second: "1m30s", 3 * time.Second: "3s", 61 * time.Minute: "1h1m",
	} {
		if got := shortDuration(in); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", in, got, want)
		}
	}
}

// TestDemoFirstHopsRefresh: the demo's token is "valid for an hour" only if
// the sidecars of the first hops refresh nested tokens: orders (which calls
// others) gets an exchange client; profile keeps its plain sidecar.
func TestDemoFirstHopsRefresh(t *testing.T) {
	for _, tc := range []struct {
		api  *catalog.API
		want bool
	}{
		{&catalog.API{Name: "orders", Exposed: true, Calls: []string{"billing"}}, true},
		{&catalog.API{Name: "billing", Calls: []string{"ledger"}}, false},
		{&catalog.API{Name: "reports", Exposed: true}, false},
		{&catalog.API{Name: demoExchangeAPI, Exposed: true, Calls: []string{"x"}}, false},
		{nil, false},
	} {
		if got := demoFirstHop(tc.api); got != tc.want {
			t.Errorf("demoFirstHop(%v) = %v, want %v", tc.api, got, tc.want)
		}
	}
}
