package mint_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/internal/netlimit"
	"github.com/embedtoken/embedtoken/mint"
)

// TestHookAnnouncedOversizeRefused: a body whose Content-Length is over the
// limit is refused before any of it is read, not after the hook's timeout
// (503, which Hydra retries), even when the body never arrives.
func TestHookAnnouncedOversizeRefused(t *testing.T) {
	e := newHookEnv(t, testCatalog(t, "k1", "scope", newTestKey(t, "k1", jose.EdDSA)))
	// As cmd serves it: refusals of requests with a body close at once.
	srv := httptest.NewServer(netlimit.RefuseAtOnce(mint.NewHookHandler(e.cur.Load, &mint.HandlerOptions{Logger: e.log, Metrics: e.met, MaxBodyBytes: 64 << 10})))
	defer srv.Close()
	for _, length := range []string{"65537", "307200", "1000000000000", "9223372036854775807"} {
		t.Run(length, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // a bound, not a timing assertion
			fmt.Fprintf(c, "POST /hooks/hydra HTTP/1.1\r\nHost: hook\r\nContent-Type: application/json\r\n%s: %s\r\nContent-Length: %s\r\n\r\n{\"session\":",
				catalog.DefaultAPIKeyHeader, testAPIKey, length)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// /hooks/hydra answers its refusals 403 (Hydra denies; a 5xx
			// it would retry): the 413 is in the description.
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "over 65536 bytes") {
				t.Errorf("status %d %s, want 403 naming the limit", resp.StatusCode, b)
			}
			if resp.Header.Get("Connection") != "close" && !resp.Close {
				t.Error("the refusal keeps the connection open")
			}
		})
	}
}
