package cmd

import (
	"context"
	"errors"
	"io"
)

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("keygen: not implemented yet")
}
