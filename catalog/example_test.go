package catalog_test

import (
	"fmt"
	"testing/fstest"

	"github.com/embedtoken/embedtoken/catalog"
)

func ExampleLoad() {
	fsys := fstest.MapFS{"catalog.hcl": {Data: []byte(`
minter {
  issuer     = "https://minter.internal"
  jwks_url   = "https://minter.internal/.well-known/jwks.json"
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = "https://orders.internal"
  scopes   = ["orders:read"]
  calls    = ["billing"]
}

api "billing" {
  audience = "https://billing.internal"
  scopes   = ["billing:read"]
  exposed  = false
}
`)}}
	cat, _, diags := catalog.Load(fsys, []string{"catalog.hcl"}, nil)
	if diags.HasErrors() {
		fmt.Println(diags)
		return
	}
	for _, a := range cat.APIs {
		fmt.Printf("%s aud=%s scopes=%v calls=%v exposed=%v lifetime=%s\n", a.Name, a.Audience, a.Scopes, a.Calls, a.Exposed, a.Lifetime)
	}
	// Output:
	// billing aud=https://billing.internal scopes=[billing:read] calls=[] exposed=false lifetime=5m0s
	// orders aud=https://orders.internal scopes=[orders:read] calls=[billing] exposed=true lifetime=5m0s
}
