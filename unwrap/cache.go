package unwrap

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// cacheShards spreads lock contention; each shard is a CLOCK cache.
const cacheShards = 16

type cacheKey [sha256.Size]byte

// boundedCache maps the full SHA-256 of a token to a value: the verified
// Result (tokenCache), or an introspection answer. It is bounded, an entry
// is never served past its expiry, and flush drops everything (keys or
// configuration changed). Safe for concurrent use; a nil cache holds
// nothing.
type boundedCache[V any] struct {
	shards [cacheShards]cacheShard[V]
	// gen counts flushes. A value computed from keys or configuration read
	// before a flush must not be put after it: putIf refuses it.
	gen atomic.Uint64
}

// tokenCache is the verified-token cache.
type tokenCache = boundedCache[*Result]

type cacheShard[V any] struct {
	mu    sync.Mutex
	index map[cacheKey]int // slot of each key
	slots []cacheSlot[V]
	hand  int
	cap   int
}

type cacheSlot[V any] struct {
	key     cacheKey
	res     V
	expires time.Time
	ref     bool
	used    bool
}

// newTokenCache returns a verified-token cache of about entries entries;
// zero or less means no cache (nil).
func newTokenCache(entries int) *tokenCache { return newBoundedCache[*Result](entries) }

// newBoundedCache returns a cache of about entries entries; zero or less
// means no cache (nil).
func newBoundedCache[V any](entries int) *boundedCache[V] {
	if entries <= 0 {
		return nil
	}
	per := (entries + cacheShards - 1) / cacheShards
	c := &boundedCache[V]{}
	for i := range c.shards {
		c.shards[i].cap = per
		c.shards[i].index = make(map[cacheKey]int, per)
	}
	return c
}

func (c *boundedCache[V]) shard(k *cacheKey) *cacheShard[V] { return &c.shards[k[0]%cacheShards] }

// get returns the value cached for k while now is before its expiry.
func (c *boundedCache[V]) get(k *cacheKey, now time.Time) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[*k]
	if !ok {
		return zero, false
	}
	sl := &s.slots[i]
	if !now.Before(sl.expires) {
		delete(s.index, *k)
		*sl = cacheSlot[V]{}
		return zero, false
	}
	sl.ref = true
	return sl.res, true
}

// generation returns the number of flushes so far: read it before reading
// what a value is derived from (keys), and pass it to putIf.
func (c *boundedCache[V]) generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

// put caches r for k until expires, evicting with CLOCK when full.
func (c *boundedCache[V]) put(k *cacheKey, r V, expires time.Time) {
	if c == nil {
		return
	}
	c.putIf(k, r, expires, c.gen.Load())
}

// putIf is put unless the cache was flushed since generation returned gen:
// then r may rest on keys that are gone, and is dropped.
func (c *boundedCache[V]) putIf(k *cacheKey, r V, expires time.Time, gen uint64) {
	if c == nil {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked under the shard's lock: flush counts first, then takes every
	// shard's lock, so an entry put here either sees the new count or is
	// cleared by that flush.
	if c.gen.Load() != gen {
		return
	}
	if i, ok := s.index[*k]; ok {
		s.slots[i].res, s.slots[i].expires, s.slots[i].ref = r, expires, true
		return
	}
	var i int
	if len(s.slots) < s.cap {
		s.slots = append(s.slots, cacheSlot[V]{})
		i = len(s.slots) - 1
	} else {
		for {
			sl := &s.slots[s.hand]
			if !sl.used || !sl.ref {
				break
			}
			sl.ref = false
			s.hand = (s.hand + 1) % len(s.slots)
		}
		i = s.hand
		s.hand = (s.hand + 1) % len(s.slots)
		if s.slots[i].used {
			delete(s.index, s.slots[i].key)
		}
	}
	s.slots[i] = cacheSlot[V]{key: *k, res: r, expires: expires, used: true}
	s.index[*k] = i
}

// flush drops every entry.
func (c *boundedCache[V]) flush() {
	if c == nil {
		return
	}
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.index)
		s.slots = s.slots[:0]
		s.hand = 0
		s.mu.Unlock()
	}
}

// len returns the number of entries (expired ones included).
func (c *boundedCache[V]) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}

// errFlightPanic is the error of a shared call that panicked.
var errFlightPanic = errors.New("shared call panicked")

// flightGroup runs at most one call per key at a time (a single flight):
// callers that arrive while a call for their key runs wait for its result
// instead of starting another. Safe for concurrent use; the zero value is
// ready.
type flightGroup[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// do returns the result of fn for key, running fn only when no call for key
// is in flight. fn runs in its own goroutine with a context detached from
// every caller's cancellation (values kept), so that the first caller
// giving up does not fail the others: fn must bound its own duration. A
// caller whose ctx ends first gets ctx's error; the call goes on and its
// result still reaches the others (and whatever fn caches). shared reports
// whether the result came from a call another caller started.
func (g *flightGroup[K, V]) do(ctx context.Context, key K, fn func(context.Context) (V, error)) (v V, shared bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[K]*flightCall[V])
	}
	c, shared := g.calls[key]
	if !shared {
		c = &flightCall[V]{done: make(chan struct{})}
		g.calls[key] = c
		go g.run(context.WithoutCancel(ctx), key, c, fn)
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.val, shared, c.err
	case <-ctx.Done():
		var zero V
		return zero, shared, ctx.Err()
	}
}

func (g *flightGroup[K, V]) run(ctx context.Context, key K, c *flightCall[V], fn func(context.Context) (V, error)) {
	defer func() {
		if p := recover(); p != nil {
			// The panic value is not kept: it could hold request data.
			c.err = errFlightPanic
		}
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.val, c.err = fn(ctx)
}

// inFlight returns the number of calls running.
func (g *flightGroup[K, V]) inFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}
