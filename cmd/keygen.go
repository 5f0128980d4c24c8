package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/embedtoken/embedtoken/catalog"
)

func runKeygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", "keygen --alg EdDSA|ES256|RS256|PS256 --kid KID --out DIR [--rsa-bits N]", stderr)
	alg := fs.String("alg", "EdDSA", "signing algorithm: EdDSA, ES256, RS256 or PS256")
	kid := fs.String("kid", "", "key ID (required); also the file name DIR/KID.key.pem")
	out := fs.String("out", "", "folder for the private key and jwks.json (required)")
	bits := fs.Int("rsa-bits", 2048, "RSA modulus size for RS256 and PS256")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *kid == "" || *out == "" {
		return &usageError{msg: "--kid and --out are required", hint: "embedtoken keygen --alg EdDSA --kid 2026-11 --out keys/"}
	}
	// JOSE names are case-sensitive in tokens, not on a command line.
	switch a := strings.ToUpper(*alg); a {
	case "EDDSA":
		*alg = "EdDSA"
	case "ES256", "RS256", "PS256":
		*alg = a
	default:
		return &usageError{msg: fmt.Sprintf("unknown --alg %q", *alg), hint: "use EdDSA, ES256, RS256 or PS256"}
	}
	if strings.ContainsAny(*kid, "/\\\"' \t") || *kid == "." || *kid == ".." {
		return &usageError{msg: fmt.Sprintf("--kid %q: a kid is also a file name; no slashes, quotes or spaces", *kid)}
	}
	if (*alg == "RS256" || *alg == "PS256") && (*bits < catalog.MinRSABits || *bits > 8192) {
		return &usageError{msg: fmt.Sprintf("--rsa-bits %d: RSA keys need %d to 8192 bits", *bits, catalog.MinRSABits)}
	}
	keyFile, jwksFile, err := catalog.WriteKey(*out, *kid, *alg, *bits)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (private, mode 0600)\nadded kid %q (%s) to %s\n", keyFile, *kid, *alg, jwksFile)
	return nil
}
