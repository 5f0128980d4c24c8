package cmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
)

// TestSizeModelMatchesMint checks check's worst-case size model against
// tokens really minted for the shipped catalog, with a subject at the
// model's assumptions (every scope, 64-character sub, client_id and claim
// values): the prediction must never be below what is minted, and not far
// above it, for every signing algorithm.
func TestSizeModelMatchesMint(t *testing.T) {
	src, err := os.ReadFile("../hcl/catalog.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"EdDSA", "ES256", "RS256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			if _, _, err := catalog.WriteKey(filepath.Join(dir, "keys/minter"), "minter-1", alg, 0); err != nil {
				t.Fatal(err)
			}
			cfg := strings.Replace(string(src), `algorithm        = "EdDSA"`, `algorithm        = "`+alg+`"`, 1)
			if err := os.WriteFile(filepath.Join(dir, "catalog.hcl"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			cat, _, diags := catalog.LoadFiles([]string{dir}, &catalog.Options{Keys: catalog.KeysRequire})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			m, err := mint.New(cat, nil)
			if err != nil {
				t.Fatal(err)
			}
			var scopes []string
			claims := map[string]any{}
			for _, a := range cat.APIs {
				scopes = append(scopes, a.Scopes...)
				for _, c := range a.Claims {
					claims[c] = strings.Repeat("c", catalog.AssumedClaimBytes)
				}
			}
			res, err := m.Mint(context.Background(), mint.Subject{
				Sub:      strings.Repeat("s", catalog.AssumedSubjectBytes),
				ClientID: strings.Repeat("k", catalog.AssumedClientIDBytes),
				Scopes:   scopes,
				Claims:   claims,
				Exp:      time.Now().Add(time.Hour),
			})
			if err != nil {
				t.Fatal(err)
			}
			pred := cat.Sizes()
			got := res.EmbeddedBytes
			t.Logf("%s: predicted %d, minted %d (%.1f%%)", alg, pred.EmbeddedBytes, got, 100*float64(pred.EmbeddedBytes-got)/float64(got))
			if pred.EmbeddedBytes < got {
				t.Errorf("the model under-predicts: predicted %d, minted %d", pred.EmbeddedBytes, got)
			}
			if float64(pred.EmbeddedBytes) > 1.03*float64(got) {
				t.Errorf("the model over-predicts by more than 3%%: predicted %d, minted %d", pred.EmbeddedBytes, got)
			}
			for _, a := range pred.APIs {
				if tok, ok := res.Tokens[a.Name]; ok && a.Bytes < len(tok) {
					t.Errorf("%s: predicted %d bytes, minted %d", a.Name, a.Bytes, len(tok))
				}
			}
		})
	}
}
