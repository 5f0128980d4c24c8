// Package unwrap is embedtoken's sidecar: it verifies the outer access token
// of each request (from a trust issuer, or a minter token from a calling
// API), takes the inner token minted for the API it fronts out of the
// embedded map, verifies that too, and forwards the request upstream with
// only the inner token. It also fetches and caches the JSON Web Key Sets it
// verifies with, caches verified tokens, and renders RFC 6750 errors.
//
// Two fallbacks sit behind small interfaces that cmd wires in: an
// Introspector for opaque outer tokens (phantom tokens; NewIntrospector is
// the RFC 7662 client) and an Exchanger for a missing or expired inner token
// (NewExchanger is the RFC 8693 client).
//
// Inspect decodes tokens without trusting them, for `embedtoken inspect`.
//
// unwrap imports catalog for the configuration model. It never imports mint
// (nor mint unwrap): the two meet only in cmd, through small interfaces.
//
// A websocket (or any upgraded connection) is not cut when the token that
// opened it expires: the token is checked once, when the connection is
// upgraded.
package unwrap
