package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/embedtoken/embedtoken/catalog"
)

// call sends one request with tok to api's sidecar.
func (d *demo) call(ctx context.Context, api, path, tok string) (*http.Response, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.sidecars[api]+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, err
}

// tour runs the demonstration and checks what it shows; any surprise is an
// error (exit 1).
func (d *demo) tour(ctx context.Context, w io.Writer) error {
	tok, n, err := d.outerToken(ctx, demoScopes)
	if err != nil {
		return err
	}
	outer := decodeClaims(tok)
	fmt.Fprintf(w, "embedtoken demo: the shipped example on loopback (throwaway keys; development issuer %s)\n\n", demoIssuer)
	fmt.Fprintf(w, "1. The client gets an outer access token: sub=%s client_id=%s scope=%q\n", demoSub, demoClient, outer["scope"])
	fmt.Fprintf(w, "   %d bytes, with %d embedded token(s) under %q; the hook minted them, the issuer signed the outer token.\n\n", len(tok), n, d.cat.Minter.Claim)

	entry := d.cat.Roots()[0].Name
	for _, r := range d.cat.Roots() {
		if r.Name == "orders" {
			entry = r.Name
		}
	}
	fmt.Fprintf(w, "2. GET %s/%s with the outer token: each hop receives only its own narrowed token\n", d.sidecars[entry], entry)
	resp, body, err := d.call(ctx, entry, "/"+entry, tok)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("demo: %s answered %s: %s", entry, resp.Status, body)
	}
	var root hop
	if err := json.Unmarshal(body, &root); err != nil {
		return err
	}
	var problems []string
	printHop(w, &root, "   ", d.cat, &problems)
	if len(problems) > 0 {
		return fmt.Errorf("demo: %s", strings.Join(problems, "; "))
	}
	fmt.Fprintf(w, "   No service ever received the outer token (%d bytes) or another service's token.\n\n", len(tok))

	fmt.Fprintln(w, "3. Requests that are refused")
	tampered := tamper(tok)
	resp, body, err = d.call(ctx, entry, "/"+entry, tampered)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   a tampered outer token at %s: %s\n      WWW-Authenticate: %s\n      %s\n", entry, resp.Status, resp.Header.Get("WWW-Authenticate"), strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("demo: a tampered token got %s, want 401", resp.Status)
	}
	for _, r := range d.cat.Roots() {
		granted := false
		for _, s := range r.Scopes {
			for _, g := range demoScopes {
				granted = granted || s == g
			}
		}
		if granted || len(r.Scopes) == 0 {
			continue
		}
		resp, body, err = d.call(ctx, r.Name, "/"+r.Name, tok)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "   %s, whose scopes (%s) were not granted: %s\n      WWW-Authenticate: %s\n      %s\n", r.Name, strings.Join(r.Scopes, " "), resp.Status, resp.Header.Get("WWW-Authenticate"), strings.TrimSpace(string(body)))
		if resp.StatusCode != http.StatusForbidden {
			return fmt.Errorf("demo: an ungranted API got %s, want 403", resp.Status)
		}
	}
	if err := d.tourExchange(ctx, w); err != nil {
		return err
	}
	if err := d.tourOpaque(ctx, w, entry, len(tok)); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nOK")
	return nil
}

// tourExchange shows a token minted before an API existed: its sidecar
// answers 401 "renew", or, with an exchange block, exchanges it (RFC 8693).
func (d *demo) tourExchange(ctx context.Context, w io.Writer) error {
	api := d.cat.API(demoExchangeAPI)
	if api == nil || d.sidecars[demoExchangeKey] == "" {
		return nil
	}
	scopes := append(append([]string{}, demoScopes...), api.Scopes...)
	tok, _, err := d.outerToken(ctx, scopes, api.Name)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n4. A token minted before %s existed (its scope covers %s, its map has no %s token)\n", api.Name, strings.Join(api.Scopes, " "), api.Name)
	resp, body, err := d.call(ctx, api.Name, "/"+api.Name, tok)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   at %s's sidecar: %s\n      WWW-Authenticate: %s\n", api.Name, resp.Status, resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("demo: a token predating %s got %s, want 401: %s", api.Name, resp.Status, body)
	}
	resp, body, err = d.call(ctx, demoExchangeKey, "/"+api.Name, tok)
	if err != nil {
		return err
	}
	var h hop
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil {
		return fmt.Errorf("demo: the exchange fallback answered %s: %s", resp.Status, body)
	}
	fmt.Fprintf(w, "   at a %s sidecar with an exchange block: %s, after an RFC 8693 token exchange at the hook:\n", api.Name, resp.Status)
	var problems []string
	printHop(w, &h, "      ", d.cat, &problems)
	act, _ := json.Marshal(h.Act)
	fmt.Fprintf(w, "      act=%s: the exchanged token says who obtained it\n", act)
	if h.Act["sub"] != demoExchangeClient {
		problems = append(problems, "the exchanged token has no act naming the exchange client")
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo: %s", strings.Join(problems, "; "))
	}
	return nil
}

// tourOpaque shows phantom tokens: the client holds a short opaque token,
// the sidecar introspects it and still forwards only the inner token.
func (d *demo) tourOpaque(ctx context.Context, w io.Writer, entry string, jwtBytes int) error {
	tok, err := d.opaqueToken(ctx, demoScopes)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n5. Phantom tokens: the client holds a %d-byte opaque token instead of the %d-byte JWT\n", len(tok), jwtBytes)
	resp, body, err := d.call(ctx, entry, "/"+entry, tok)
	if err != nil {
		return err
	}
	var h hop
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil {
		return fmt.Errorf("demo: an opaque token at %s got %s: %s", entry, resp.Status, body)
	}
	fmt.Fprintf(w, "   %s's sidecar introspected it (RFC 7662) and forwarded only the inner token: %s\n", entry, resp.Status)
	var problems []string
	printHop(w, &h, "   ", d.cat, &problems)
	if len(problems) > 0 {
		return fmt.Errorf("demo: %s", strings.Join(problems, "; "))
	}
	resp, _, err = d.call(ctx, entry, "/"+entry, demoOpaquePrefix+randomHex(24))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   an opaque token the issuer never issued (or revoked): %s\n      WWW-Authenticate: %s\n", resp.Status, resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("demo: an unknown opaque token got %s, want 401", resp.Status)
	}
	return nil
}

// printHop prints one hop and its calls, collecting what breaks the
// promise of the pattern.
func printHop(w io.Writer, h *hop, indent string, cat *catalog.Catalog, problems *[]string) {
	api := cat.API(h.API)
	claims := make([]string, 0, len(h.Claims))
	for k, v := range h.Claims {
		claims = append(claims, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(claims)
	nested := "none"
	if len(h.Nested) > 0 {
		nested = "[" + strings.Join(h.Nested, ", ") + "]"
	}
	fmt.Fprintf(w, "%s%s received a %d-byte token: aud=%s scope=%q claims={%s} lifetime=%ds nested=%s\n",
		indent, h.API, h.Bytes, h.Audience, h.Scope, strings.Join(claims, " "), h.LifetimeS, nested)
	if h.SawOuter || h.SawOtherToken || h.Audience != api.Audience {
		*problems = append(*problems, h.API+" received a token that is not its own")
	}
	for _, s := range strings.Fields(h.Scope) {
		if !api.HasScope(s) {
			*problems = append(*problems, fmt.Sprintf("%s received the scope %s", h.API, s))
		}
	}
	if h.LifetimeS > int64(api.Lifetime.Seconds()) {
		*problems = append(*problems, h.API+"'s token outlives its declared lifetime")
	}
	for i, c := range h.Calls {
		callee := api.Calls[i]
		branch, next := "├─ ", "│  "
		if i == len(h.Calls)-1 {
			branch, next = "└─ ", "   "
		}
		if c.Hop == nil {
			fmt.Fprintf(w, "%s%s%s answered %d\n", indent, branch, callee, c.Status)
			*problems = append(*problems, fmt.Sprintf("%s -> %s answered %d", h.API, callee, c.Status))
			continue
		}
		fmt.Fprintf(w, "%s%scalls %s through its sidecar, forwarding its own token:\n", indent, branch, callee)
		printHop(w, c.Hop, indent+next, cat, problems)
	}
}

// tamper flips one character of the signature.
func tamper(tok string) string {
	b := []byte(tok)
	i := len(b) - 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func (d *demo) serveForever(ctx context.Context, w io.Writer) error {
	tok, _, err := d.outerToken(ctx, demoScopes)
	if err != nil {
		return err
	}
	hdr := filepath.Join(d.tmp, "authorization.header")
	if err := os.WriteFile(hdr, []byte("Authorization: Bearer "+tok+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nServing until Ctrl-C. A fresh outer token (valid for %s) is in %s, so it stays out of your shell history.\n", shortDuration(d.tokenLife()), hdr)
	fmt.Fprintf(w, "Its inner tokens expire sooner (%s); the sidecars of %s exchange it for fresh ones when one expires (README, Lifetimes), so every command keeps its answer while the token is valid:\n",
		d.innerLives(), strings.Join(d.firstHops(), ", "))
	names := make([]string, 0, len(d.sidecars))
	for n := range d.sidecars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		api, _, _ := strings.Cut(n, "+")
		// Say what each command answers: try it once now.
		note := ""
		if resp, body, err := d.call(ctx, n, "/"+api, tok); err == nil {
			var e struct {
				Desc string `json:"error_description"`
			}
			_ = json.Unmarshal(body, &e)
			note = "# " + resp.Status
			if e.Desc != "" {
				note += ": " + e.Desc
			}
			if strings.HasSuffix(n, "+exchange") {
				note += " (the sidecar with an exchange block)"
			}
		}
		fmt.Fprintf(w, "  curl -s -H @%s %s/%s   %s\n", hdr, d.sidecars[n], api, note)
	}
	fmt.Fprintf(w, "  curl -s -i %s/orders            # no token: 401 with a Bearer challenge\n", d.sidecars["orders"])
	fmt.Fprintf(w, "  embedtoken inspect < <(cut -d' ' -f3 %s)   # the tree of embedded tokens\n", hdr)
	<-ctx.Done()
	return nil
}

// tokenLife is the lifetime of the demo's outer tokens.
func (d *demo) tokenLife() time.Duration {
	return time.Until(d.issuer.Exp()).Round(time.Minute)
}

// innerLives lists the lifetimes of the chains of exposed APIs that call
// others: the shortest lifetime along each.
func (d *demo) innerLives() string {
	var parts []string
	for _, a := range d.cat.APIs {
		if a.Exposed && len(a.Calls) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s, its shortest nested %s", a.Name, shortDuration(a.Lifetime), shortDuration(d.cat.ShortestLifetime(a.Name))))
		}
	}
	return strings.Join(parts, "; ")
}

// firstHops names the sidecars that refresh nested tokens.
func (d *demo) firstHops() []string {
	var out []string
	for _, a := range d.cat.APIs {
		if demoFirstHop(a) {
			out = append(out, a.Name)
		}
	}
	return out
}

// shortDuration prints 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
