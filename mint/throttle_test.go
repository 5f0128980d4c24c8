package mint

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestAuthThrottle(t *testing.T) {
	addr := remotePrefix("192.0.2.1:4711")
	other := remotePrefix("192.0.2.2:4711")
	cases := []struct {
		name      string
		fails     int
		client    string // tracked client of the failures
		addr      netip.Prefix
		after     time.Duration
		askClient string
		askAddr   netip.Prefix
		blocked   bool
	}{
		{"under the limit", authFailLimit - 1, "c", addr, 0, "c", addr, false},
		{"at the limit, same address", authFailLimit, "", addr, 0, "", addr, true},
		{"at the limit, same client elsewhere", authFailLimit, "c", addr, 0, "c", other, true},
		{"other client, other address", authFailLimit, "c", addr, 0, "d", other, false},
		{"window over", authFailLimit, "c", addr, authFailWindow, "c", addr, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			th := newAuthThrottle(clk.now)
			for range tc.fails {
				th.fail(tc.client, tc.addr)
			}
			clk.t = clk.t.Add(tc.after)
			wait := th.retryAfter(tc.askClient, tc.askAddr)
			if got := wait > 0; got != tc.blocked {
				t.Fatalf("blocked: got %v (retry after %v), want %v", got, wait, tc.blocked)
			}
			if tc.blocked && (wait <= 0 || wait > authFailWindow) {
				t.Errorf("retry after %v, want within the window", wait)
			}
		})
	}
}

// TestAuthThrottleBounded: the tables never grow past authFailEntries;
// when the address table is full, new addresses are not tracked (a spread
// attack does not lock every client out) while a declared client id's
// guesses stay bounded, and expired windows are swept.
func TestAuthThrottleBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	th := newAuthThrottle(clk.now)
	for i := range authFailEntries + 500 {
		th.fail("", remotePrefix(fmt.Sprintf("10.%d.%d.%d:1", i>>16&0xff, i>>8&0xff, i&0xff)))
	}
	if n := len(th.addrs); n != authFailEntries {
		t.Fatalf("address entries: got %d, want %d", n, authFailEntries)
	}
	if th.retryAfter("app", remotePrefix("203.0.113.9:1")) > 0 {
		t.Error("a new address while the table is full of live entries is throttled: a spread attack locks every client out")
	}
	for i := range authFailLimit {
		th.fail("app", remotePrefix(fmt.Sprintf("203.0.113.%d:1", 10+i)))
	}
	if th.retryAfter("app", remotePrefix("203.0.113.9:1")) <= 0 {
		t.Error("a declared client id's failures from untracked addresses must still throttle it")
	}
	clk.t = clk.t.Add(authFailWindow)
	th.fail("", remotePrefix("203.0.113.9:1"))
	if n := len(th.addrs); n != 1 {
		t.Errorf("after the window: got %d address entries, want 1 (expired ones swept)", n)
	}
}

func TestRemotePrefix(t *testing.T) {
	cases := []struct{ in, want string }{
		{"192.0.2.1:80", "192.0.2.1/32"},
		{"[2001:db8::1]:80", "2001:db8::/64"},
		{"[2001:db8::ffff:1]:80", "2001:db8::/64"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1/32"},
		{"garbage", "invalid Prefix"},
	}
	for _, tc := range cases {
		if got := remotePrefix(tc.in).String(); got != tc.want {
			t.Errorf("remotePrefix(%q): got %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestFailureLogRateLimited(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	th := newAuthThrottle(clk.now)
	logged := 0
	for range 100 {
		if ok, _ := th.logAllowed(); ok {
			logged++
		}
	}
	if logged != failLogBurst {
		t.Fatalf("lines in one second: got %d, want %d", logged, failLogBurst)
	}
	clk.t = clk.t.Add(failLogEvery)
	ok, suppressed := th.logAllowed()
	if !ok || suppressed != 100-failLogBurst {
		t.Errorf("next second: got %v with %d suppressed, want true with %d", ok, suppressed, 100-failLogBurst)
	}
}
