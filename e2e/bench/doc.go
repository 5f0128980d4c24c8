// Package bench holds embedtoken's side-by-side benchmarks: the token size
// table (size_test.go, part of `go test ./...`: it takes about a second),
// and cmd/loadbench, the load benchmark of the sidecar, a bare reverse
// proxy, oauth2-proxy and the hook, which runs only through run.sh (never
// in plain `go test`). BENCHMARKS.md at the repository root reports them.
package bench
