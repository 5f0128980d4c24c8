// Command hookstub is a token hook that mints nothing: a process of its own
// (net/http only) answering every POST /hooks/hydra that carries the API key
// with the same bytes, read once from a file. TestBenchTokenEndpoint runs it
// beside `embedtoken hook` so that both are separate processes woken from
// idle by each call: the difference is what embedtoken's work adds.
//
//	HOOKSTUB_KEY=... hookstub LISTEN_ADDR API_KEY_HEADER ANSWER_FILE
package main

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/embedtoken/embedtoken/e2e/bench/floor"
)

func main() {
	if len(os.Args) != 4 || os.Getenv("HOOKSTUB_KEY") == "" {
		fmt.Fprintln(os.Stderr, "usage: HOOKSTUB_KEY=... hookstub LISTEN_ADDR API_KEY_HEADER ANSWER_FILE")
		os.Exit(2)
	}
	answer, err := os.ReadFile(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookstub:", err)
		os.Exit(1)
	}
	key, header := []byte(os.Getenv("HOOKSTUB_KEY")), os.Args[2]
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("POST /hooks/hydra", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(header)), key) != 1 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(answer)
	})
	if err := floor.ServeUntilSignal(os.Args[1], mux); err != nil {
		fmt.Fprintln(os.Stderr, "hookstub:", err)
		os.Exit(1)
	}
}
