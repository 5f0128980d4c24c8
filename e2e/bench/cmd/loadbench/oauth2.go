package main

// oauth2ProxyArgs are oauth2-proxy's flags in JWT bearer mode, listening on
// listen, proxying to upstream, trusting the development issuer at
// issuer. Its best case: the token's aud is its client id, so the first
// verifier accepts it; request logging off (the sidecar logs no line per
// request either). Flags as in its docs for JWT bearer mode. The proxy
// suite runs it as a reverse proxy, the gateway suite asks its
// /oauth2/auth (nginx auth_request).
func oauth2ProxyArgs(listen, upstream, issuer string) []string {
	return []string{
		"--http-address=" + listen,
		"--upstream=" + upstream + "/",
		"--provider=oidc",
		"--oidc-issuer-url=" + issuer,
		"--client-id=" + benchAudience,
		"--client-secret=bench-client-secret",
		"--cookie-secret=0123456789abcdef0123456789abcdef",
		"--cookie-secure=false",
		"--email-domain=*",
		"--skip-jwt-bearer-tokens",
		"--extra-jwt-issuers=" + issuer + "=" + benchAudience,
		"--request-logging=false",
	}
}
