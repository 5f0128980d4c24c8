package cmd

import (
	"context"
	"errors"
	"io"
)

func runSidecar(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("sidecar: not implemented yet")
}
