package unwrap

import (
	"crypto/sha256"
	"sync"
	"time"
)

// cacheShards spreads lock contention; each shard is a CLOCK cache.
const cacheShards = 16

type cacheKey [sha256.Size]byte

// tokenCache maps the full SHA-256 of a token to its verified Result. It is
// bounded, an entry is never served past its expiry, and Flush drops
// everything (keys or configuration changed). Safe for concurrent use.
type tokenCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	index map[cacheKey]int // slot of each key
	slots []cacheSlot
	hand  int
	cap   int
}

type cacheSlot struct {
	key     cacheKey
	res     *Result
	expires time.Time
	ref     bool
	used    bool
}

// newTokenCache returns a cache of about entries entries; zero or less
// means no cache (nil).
func newTokenCache(entries int) *tokenCache {
	if entries <= 0 {
		return nil
	}
	per := (entries + cacheShards - 1) / cacheShards
	c := &tokenCache{}
	for i := range c.shards {
		c.shards[i].cap = per
		c.shards[i].index = make(map[cacheKey]int, per)
	}
	return c
}

func (c *tokenCache) shard(k *cacheKey) *cacheShard { return &c.shards[k[0]%cacheShards] }

// get returns the Result cached for k while now is before its expiry.
func (c *tokenCache) get(k *cacheKey, now time.Time) (*Result, bool) {
	if c == nil {
		return nil, false
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[*k]
	if !ok {
		return nil, false
	}
	sl := &s.slots[i]
	if !now.Before(sl.expires) {
		delete(s.index, *k)
		*sl = cacheSlot{}
		return nil, false
	}
	sl.ref = true
	return sl.res, true
}

// put caches r for k until expires, evicting with CLOCK when full.
func (c *tokenCache) put(k *cacheKey, r *Result, expires time.Time) {
	if c == nil {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[*k]; ok {
		s.slots[i].res, s.slots[i].expires, s.slots[i].ref = r, expires, true
		return
	}
	var i int
	if len(s.slots) < s.cap {
		s.slots = append(s.slots, cacheSlot{})
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
	s.slots[i] = cacheSlot{key: *k, res: r, expires: expires, used: true}
	s.index[*k] = i
}

// flush drops every entry.
func (c *tokenCache) flush() {
	if c == nil {
		return
	}
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
func (c *tokenCache) len() int {
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
