package unwrap

import (
	"context"
	"os"
	"strconv"
	"sync"
	"time"
)

// KeySources keeps key sets alive across reloads. A Verifier built with
// Options.KeySources takes the key set of a source that a Verifier still
// holds (the same name, jwks_url or jwks_file, ca_file unchanged,
// jwks_refresh and jwks_min_refetch), with its loaded keys, its HTTP client
// and its refetch rate limit, instead of building and fetching it again:
// a reload refetches nothing that did not change, and jwks_min_refetch
// holds across reloads. A key set keeps running (refreshing) while a
// Verifier holds it; when the last one is closed it stops and its idle
// connections are closed. The zero value is not usable: call
// NewKeySources. It is safe for concurrent use.
type KeySources struct {
	mu   sync.Mutex
	sets map[sourceKey]*sharedSet
}

// NewKeySources returns an empty set of shared key sources.
func NewKeySources() *KeySources { return &KeySources{sets: map[sourceKey]*sharedSet{}} }

// sourceKey identifies a key source: what its key set is built from.
type sourceKey struct {
	name, url, file     string
	caFile, caStamp     string
	refresh, minRefetch time.Duration
}

// sharedSet is a key set and the Verifiers holding it.
type sharedSet struct {
	ks      *keySet
	key     sourceKey
	holders map[*Verifier]func() // each holder's cache flush
	stop    context.CancelFunc   // nil until started
	done    chan struct{}
}

func newSourceKey(name, url, file, caFile string, refresh, minRefetch time.Duration) sourceKey {
	k := sourceKey{name: name, url: url, file: file, caFile: caFile, refresh: refresh, minRefetch: minRefetch}
	if caFile != "" {
		if st, err := os.Stat(caFile); err == nil {
			k.caStamp = st.ModTime().String() + "/" + strconv.FormatInt(st.Size(), 10)
		}
	}
	return k
}

// acquire returns the key set of key for v, building it with build when no
// Verifier holds one. flush is called when the set's keys change.
func (p *KeySources) acquire(key sourceKey, v *Verifier, flush func(), build func() (*keySet, error)) (*keySet, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sets[key]
	if s == nil {
		ks, err := build()
		if err != nil {
			return nil, err
		}
		s = &sharedSet{ks: ks, key: key, holders: map[*Verifier]func(){}}
		ks.onChange = func() { p.notify(s) }
		p.sets[key] = s
	}
	s.holders[v] = flush
	return s.ks, nil
}

// notify flushes the caches of every holder of s.
func (p *KeySources) notify(s *sharedSet) {
	p.mu.Lock()
	flushes := make([]func(), 0, len(s.holders))
	for _, f := range s.holders {
		flushes = append(flushes, f)
	}
	p.mu.Unlock()
	for _, f := range flushes {
		f()
	}
}

// start runs ks's refresher unless it runs already. It outlives the
// Verifier that starts it: it stops when the last holder releases ks.
func (p *KeySources) start(ks *keySet) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sets {
		if s.ks != ks || s.stop != nil {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		s.stop, s.done = cancel, make(chan struct{})
		go func() {
			defer close(s.done)
			ks.run(ctx)
		}()
	}
}

// release drops v's hold on every key set; a set no longer held is stopped
// and its idle connections closed.
func (p *KeySources) release(v *Verifier) {
	var stopped []*sharedSet
	p.mu.Lock()
	for key, s := range p.sets {
		if _, ok := s.holders[v]; !ok {
			continue
		}
		delete(s.holders, v)
		if len(s.holders) == 0 {
			delete(p.sets, key)
			stopped = append(stopped, s)
		}
	}
	p.mu.Unlock()
	for _, s := range stopped {
		if s.stop != nil {
			s.stop()
			<-s.done
		}
		s.ks.client.CloseIdleConnections()
	}
}

// Len is the number of key sets held.
func (p *KeySources) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sets)
}

// CloseIdleConnections closes the idle connections of the introspection
// endpoints: a replaced configuration leaves none behind.
func (in *introspection) CloseIdleConnections() {
	for _, t := range in.trusts {
		t.endpoint.client.CloseIdleConnections()
	}
}

// CloseIdleConnections closes the idle connections of the exchange
// endpoint.
func (x *exchangeClient) CloseIdleConnections() { x.endpoint.client.CloseIdleConnections() }

// closeIdle closes the idle connections of the verifier's fallbacks
// (introspection, exchange) when they hold any.
func (v *Verifier) closeIdle() {
	for _, f := range []any{v.introspector, v.exchanger} {
		if c, ok := f.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}
