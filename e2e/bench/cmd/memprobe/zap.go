//go:build zap

package main

import "go.uber.org/zap"

// zap: a production logger writing one line.
func init() {
	extras = append(extras, func() {
		l, err := zap.NewProduction()
		if err != nil {
			panic(err)
		}
		l.Info("hello", zap.String("k", "v"))
	})
}
