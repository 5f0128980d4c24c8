package unwrap

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkCacheChurn is the verified-token cache when every request
// misses: a pool of distinct tokens five times the cache's size (as the
// second set-up's cold run: 5000 tokens, cache_entries 1000), each
// request a lookup that misses and an insertion that evicts.
func BenchmarkCacheChurn(b *testing.B) {
	const entries, pool = 1000, 5000
	keys := make([]cacheKey, pool)
	for i := range keys {
		keys[i] = tokenKey("h.p" + strconv.Itoa(i) + ".s")
	}
	c := newTokenCache(entries)
	r := &Result{}
	exp := t0.Add(time.Hour)
	for i := range keys {
		c.put(&keys[i], r, exp)
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	i := 0
	for b.Loop() {
		k := &keys[i%pool]
		if _, ok := c.get(k, t0); !ok {
			c.putIf(k, r, exp, c.generation())
		}
		i++
	}
}
