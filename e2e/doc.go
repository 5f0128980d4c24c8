// Package e2e holds embedtoken's end-to-end tests: they build the embedtoken
// binary once (TestMain), run `check`, `keygen`, `mint`, `hook` and `sidecar`
// as real processes on loopback, with small recording services as upstreams,
// and assert what every hop of a request received.
//
// Two issuers are exercised: the development issuer (`embedtoken mint
// --outer-key`, always run by `go test ./...`) and a real Ory Hydra v2.3.0,
// run only when EMBEDTOKEN_E2E_HYDRA=1. Hydra is built from the separate tool
// module in e2e/hydra (e2e/hydra/build.sh), so the main module's go.mod stays
// lean; EMBEDTOKEN_HYDRA_BIN points at a prebuilt binary instead.
//
// Every test skips under -short. Every network address is on 127.0.0.1 and
// every wait is bounded. The package has no non-test code and imports no
// package of embedtoken: it tests the binary through its command-line
// contract (README.md and docs/) only.
package e2e
