package cmd

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/embedtoken/embedtoken/catalog"
)

// issuerLimit is one documented limit of an issuer, with its source.
type issuerLimit struct {
	What   string `json:"what"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// issuerProfile is what `check --issuer NAME` knows of an issuer: its
// documented limits and the checks of the catalog against them.
type issuerProfile struct {
	limits []issuerLimit
	// claimBytes bounds the embedded map's JSON as the issuer receives it
	// (0: none documented).
	claimBytes int
	// hookWait is how long the issuer waits for the hook (0: not called).
	hookWait time.Duration
	// waitNote says what happens past hookWait.
	waitNote string
	// reserved are claim names the issuer will not let the hook set.
	reserved []string
	// noAudience: the issuer's access tokens grant no audience, so
	// mint_for = "audience" mints nothing.
	noAudience bool
}

const (
	srcHydra   = "Ory Hydra v2 token hook (oauth2.token_hook): docs/hooks.md 'POST /hooks/hydra'; measured in e2e/hydra_hook_test.go"
	srcOIDC    = "node-oidc-provider 9.x extraTokenClaims (lib/helpers/configuration_result.js: a plain object) and deploy/oidc-provider/server.js"
	srcOkta    = "https://developer.okta.com/docs/reference/token-hook/ and https://developer.okta.com/docs/concepts/inline-hooks/ ('Time out and retry')"
	srcCognito = "https://docs.aws.amazon.com/cognito/latest/developerguide/user-pool-lambda-pre-token-generation.html"
	srcAuth0   = "https://auth0.com/docs/customize/actions/limitations and https://auth0.com/docs/troubleshoot/product-lifecycle/past-migrations/custom-claims-migration"
)

// issuerProfiles are the issuers embedtoken is wired into (README, "Wiring
// issuers").
var issuerProfiles = map[string]issuerProfile{
	"hydra": {
		limits: []issuerLimit{
			{"claim values", "any JSON; Hydra puts them under ext in JWT access tokens (trust claim = \"ext.<claim>\")", srcHydra},
			{"hook timeout", "the token endpoint gives up after 10 s; 5xx and 429 are retried twice, so 3 x hook.timeout must fit", srcHydra},
			{"token size", "none of Hydra's own; HTTP header limits downstream (nginx 8 KiB)", srcHydra},
		},
		hookWait: 10 * time.Second / 3,
		waitNote: "Hydra retries twice within its 10 s: past 3.3 s a slow hook fails the token request (closed, but every time)",
	},
	"oidc-provider": {
		limits: []issuerLimit{
			{"claim values", "extraTokenClaims must return a plain object; any JSON values", srcOIDC},
			{"hook timeout", "server.js bounds each call at EMBEDTOKEN_HOOK_TIMEOUT_MS, 2500 ms by default; a failure is a 500 and no token", srcOIDC},
			{"token size", "none of its own; HTTP header limits downstream", srcOIDC},
		},
		hookWait: 2500 * time.Millisecond,
		waitNote: "server.js gives up first and oidc-provider refuses the token: raise EMBEDTOKEN_HOOK_TIMEOUT_MS or lower hook.timeout",
		reserved: []string{"jti", "sub", "iat", "exp", "scope", "client_id", "iss", "aud", "cnf", "authorization_details"},
	},
	"okta": {
		limits: []issuerLimit{
			{"claim values", "any JSON value (com.okta.access.patch add)", srcOkta},
			{"hook timeout", "3 s, at most one retry; a timeout or a status other than 200 issues the token UNMODIFIED", srcOkta},
			{"response size", "under 256 KB", "Okta SDK TokenHookResponse: https://developer.okta.com/okta-sdk-java/apidocs/com/okta/sdk/resource/model/TokenHookResponse.html"},
		},
		claimBytes: 256 * 1000,
		hookWait:   3 * time.Second,
		waitNote:   "Okta stops waiting at 3 s and issues the token without the map (sidecars then answer 401 renew, or exchange)",
		reserved:   []string{"acr", "amr", "as_uri", "cid", "groups", "rpt", "rsi", "uid", "username", "iss", "jti", "token_type", "ver"},
	},
	"cognito": {
		limits: []issuerLimit{
			{"claim values", "event V2_0/V3_0: string, number, boolean, arrays, JSON objects (V1_0: strings only, refused)", srcCognito},
			{"hook timeout", "the Lambda (cmd/embedtoken-cognito) mints itself: no hook call; Cognito waits 5 s for a trigger", srcCognito},
			{"token size", "none documented for claimsToAddOrOverride", srcCognito},
			{"audience", "Cognito access tokens carry no aud: mint_for = \"audience\" mints nothing", srcCognito},
		},
		reserved:   []string{"acr", "amr", "aud", "at_hash", "auth_time", "azp", "cognito:username", "exp", "iat", "identities", "iss", "jti", "nbf", "nonce", "origin_jti", "sub", "token_use", "client_id", "scope", "username"},
		noAudience: true,
	},
	"auth0": {
		limits: []issuerLimit{
			{"claim values", "any JSON value (api.accessToken.setCustomClaim)", srcAuth0},
			{"hook timeout", "a flow must finish within 20 s; the Action bounds the hook call at EMBEDTOKEN_HOOK_TIMEOUT_MS, 5000 ms by default", srcAuth0},
			{"custom claims size", "at most 100 KB of custom claims per token", srcAuth0},
		},
		claimBytes: 100 * 1024,
		hookWait:   5 * time.Second,
		waitNote:   "the Action gives up first and denies the token: raise EMBEDTOKEN_HOOK_TIMEOUT_MS or lower hook.timeout",
		reserved:   []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "azp", "scope", "gty", "permissions"},
	},
}

// issuerNames lists the known issuers, sorted.
func issuerNames() []string {
	names := make([]string, 0, len(issuerProfiles))
	for n := range issuerProfiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkIssuer is the JSON form of the issuer section of check.
type checkIssuer struct {
	Name     string        `json:"name"`
	Limits   []issuerLimit `json:"limits"`
	Warnings []string      `json:"warnings"`
}

// issuerReport checks the catalog's worst case against the issuer's
// limits.
func issuerReport(cat *catalog.Catalog, name string, s catalog.SizeReport) *checkIssuer {
	p := issuerProfiles[name]
	r := &checkIssuer{Name: name, Limits: p.limits, Warnings: []string{}}
	// The map as JSON, as the issuer receives it: EmbeddedBytes is its
	// base64url length inside the outer token.
	if jsonBytes := s.EmbeddedBytes * 3 / 4; p.claimBytes > 0 && jsonBytes > p.claimBytes {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the embedded map may reach %d bytes of JSON, over %s's limit of %d", jsonBytes, name, p.claimBytes))
	}
	if h := cat.Hook; h != nil && p.hookWait > 0 && h.Timeout >= p.hookWait {
		r.Warnings = append(r.Warnings, fmt.Sprintf("hook.timeout %s is not below %s's wait of %s: %s", h.Timeout, name, p.hookWait, p.waitNote))
	}
	if slices.Contains(p.reserved, cat.Minter.Claim) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("minter.claim %q is a claim %s does not let a hook set (%s)", cat.Minter.Claim, name, strings.Join(p.reserved, " ")))
	}
	if p.noAudience && cat.Minter.MintFor == catalog.MintForAudience {
		r.Warnings = append(r.Warnings, fmt.Sprintf("mint_for = \"audience\": %s access tokens grant no audience, so no API would get a token; use mint_for = \"scope\"", name))
	}
	if name == "okta" && cat.Hook != nil && !cat.Hook.Okta {
		r.Warnings = append(r.Warnings, "hook.okta is false: POST /hooks/okta answers every request with an error object")
	}
	if (name == "oidc-provider" || name == "auth0") && cat.Hook != nil && !cat.Hook.Generic {
		r.Warnings = append(r.Warnings, fmt.Sprintf("hook.generic is false: %s calls POST /hooks/generic", name))
	}
	return r
}

// writeIssuerText is the issuer section of check's text output.
func writeIssuerText(w io.Writer, r *checkIssuer) {
	fmt.Fprintf(w, "\nIssuer %s: documented limits\n", r.Name)
	for _, l := range r.Limits {
		fmt.Fprintf(w, "  %s: %s\n    source: %s\n", l.What, l.Value, l.Source)
	}
	fmt.Fprintf(w, "Issuer warnings (%d)\n", len(r.Warnings))
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  %s\n", warn)
	}
}
