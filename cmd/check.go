package cmd

import (
	"context"
	"errors"
	"io"
)

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("check: not implemented yet")
}
