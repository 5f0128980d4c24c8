package unwrap

import (
	"errors"
	"strings"
)

// noteFetch remembers the outcome of a key set fetch, for NotReady.
func (k *keySet) noteFetch(err error) {
	if err == nil {
		k.lastErr.Store(nil)
		return
	}
	msg := err.Error()
	k.lastErr.Store(&msg)
}

// notReady says why the key set has not loaded.
func (k *keySet) notReady() string {
	src := k.url
	if src == "" {
		src = k.file
	}
	why := "key set of " + k.name + " (" + src + ") not loaded yet"
	if e := k.lastErr.Load(); e != nil {
		why += ": last error: " + *e
	}
	return why
}

// NotReady says why the verifier is not ready (nil when it is): each key
// set not loaded yet, with its source and the last fetch's error, and a
// token exchange client that the endpoint refused. The text holds
// configuration and error messages, never token material.
func (v *Verifier) NotReady() error {
	var why []string
	for _, ks := range v.keySets() {
		if !ks.Loaded() {
			why = append(why, ks.notReady())
		}
	}
	if s := v.exchangeNotReady(); s != "" {
		why = append(why, s)
	}
	if len(why) == 0 {
		return nil
	}
	return errors.New(strings.Join(why, "; "))
}

// NotReady says why the sidecar is not ready, or nil: see
// Verifier.NotReady. /readyz shows it.
func (s *Sidecar) NotReady() error { return s.verifier.NotReady() }
