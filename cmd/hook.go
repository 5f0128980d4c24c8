package cmd

import (
	"context"
	"errors"
	"io"
)

func runHook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("hook: not implemented yet")
}
