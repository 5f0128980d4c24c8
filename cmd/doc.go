// Package cmd is embedtoken's composition root: one function per subcommand,
// each with its own flag set, wiring catalog, mint and unwrap together. It
// builds the logger, loads the catalog and renders diagnostics (diag.go is,
// with catalog, the only code importing hashicorp/hcl). It never imports
// go-jose: token work belongs to mint and unwrap.
package cmd
