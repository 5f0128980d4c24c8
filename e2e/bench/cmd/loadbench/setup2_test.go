package main

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/mint"
)

func TestApplySetup(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantErr   string
		wantConns int
		wantPool  int
		wantCPU   string
		wantDur   time.Duration
	}{
		{name: "first keeps the defaults", args: nil, wantConns: 32, wantPool: 4096, wantCPU: "0", wantDur: 10 * time.Second},
		{name: "second", args: []string{"-setup", "second"}, wantConns: 16, wantPool: 5000, wantCPU: "1", wantDur: 6 * time.Second},
		{name: "explicit flags win", args: []string{"-setup", "second", "-conns", "8", "-duration", "2s"}, wantConns: 8, wantPool: 5000, wantCPU: "1", wantDur: 2 * time.Second},
		{name: "unknown set-up", args: []string{"-setup", "third"}, wantErr: `-setup "third"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c config
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.StringVar(&c.setup, "setup", setupFirst, "")
			fs.IntVar(&c.conns, "conns", 32, "")
			fs.IntVar(&c.pool, "pool", 4096, "")
			fs.IntVar(&c.cacheEntries, "cache-entries", 1024, "")
			fs.StringVar(&c.serverCPU, "server-cpu", "0", "")
			fs.StringVar(&c.loadCPU, "load-cpu", "1", "")
			fs.DurationVar(&c.duration, "duration", 10*time.Second, "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := c.applySetup(fs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.conns != tt.wantConns || c.pool != tt.wantPool || c.serverCPU != tt.wantCPU || c.duration != tt.wantDur {
				t.Fatalf("conns %d pool %d server-cpu %q duration %s", c.conns, c.pool, c.serverCPU, c.duration)
			}
		})
	}
}

func TestSecondSetupTokens(t *testing.T) {
	c := &config{setup: setupSecond}
	pc, err := c.proxyCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(pc.scopes) != secondK || !strings.Contains(pc.src, `default_lifetime   = "15m0s"`) {
		t.Fatalf("catalog: %d scopes\n%s", len(pc.scopes), pc.src)
	}
	dir, err := writeConfigDir(t.TempDir(), "p", pc.src, nil)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := loadCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, exposed, err := countMinted(cat, pc.scopes); err != nil || exposed != secondK {
		t.Fatalf("exposed %d, %v", exposed, err)
	}
	dev, err := newDevIssuerFor("https://issuer.test", pc.outerLifetime, pc.typJWT)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mint.New(cat, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := mint.Subject{Sub: benchSub, ClientID: benchClientID, Scopes: pc.scopes, Exp: dev.Exp()}
	res, err := m.Mint(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := dev.Sign(s, res)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	if h.KeyID != "bench-1" || h.ExtraHeaders[jose.HeaderType] != "JWT" {
		t.Fatalf("header kid %q typ %v", h.KeyID, h.ExtraHeaders[jose.HeaderType])
	}
	if _, err := jws.Verify(dev.jwks.Keys[0].Key); err != nil {
		t.Fatalf("resigned token does not verify: %v", err)
	}
	if left := time.Until(dev.Exp()); left > 16*time.Minute || left < 14*time.Minute {
		t.Fatalf("outer lifetime %s, want 15m", left)
	}
}
