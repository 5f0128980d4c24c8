//go:build hcl

package main

import (
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// hcl: one attribute parsed and decoded into a struct.
func init() {
	extras = append(extras, func() {
		p := hclparse.NewParser()
		f, diags := p.ParseHCL([]byte("a = \"b\"\n"), "x.hcl")
		if diags.HasErrors() {
			panic(diags)
		}
		var v struct {
			A string `hcl:"a"`
		}
		_ = gohcl.DecodeBody(f.Body, nil, &v)
	})
}
