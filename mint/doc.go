// Package mint is the issuer side of embedtoken: given a Subject (who the
// outer access token is for, which scopes and audiences it was granted, the
// subject's claims and the outer token's expiry) and a *catalog.Catalog, it
// mints one narrowed inner JWT per API and nests them along the catalog's
// call graph (the token format is in the repository's docs/ and README).
//
// It also holds the key ring (the active key signs, every declared key is
// published as a JWKS), the issuer adapters (the Ory Hydra v2 token hook and
// the generic JSON hook, as http.Handlers), the public metadata endpoints,
// the RFC 8693 token exchange endpoint (NewExchangeHandler, minting through
// Minter.Issue with the same narrowing and signing code as Mint), and a
// development issuer of whole outer tokens for tests, the demo and
// benchmarks.
//
// mint imports catalog and go-jose. It never imports unwrap, and unwrap never
// imports it: the sidecar verifies what mint signs only through the public
// JWKS, and the exchange endpoint verifies subject tokens through
// SubjectVerifier, an interface declared here that cmd implements around the
// sidecar's verifier. Nothing here logs a token, a key or a secret.
package mint
