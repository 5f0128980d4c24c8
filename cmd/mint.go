package cmd

import (
	"context"
	"errors"
	"io"
)

func runMint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("mint: not implemented yet")
}
