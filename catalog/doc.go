// Package catalog decodes embedtoken's HCL declarations — the minter, the
// APIs and their call graph, and the sidecar, hook, trust, exchange_client and
// exchange blocks — into a validated, immutable *Catalog, with diagnostics that
// point at file:line:col.
//
// It is the only package besides cmd/diag.go that imports hashicorp/hcl; mint
// and unwrap receive plain Go values from it and never see HCL types. It
// imports neither mint nor unwrap.
package catalog
