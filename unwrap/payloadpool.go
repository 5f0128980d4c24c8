package unwrap

import "sync"

// maxPooledPayload bounds the decoded payloads whose buffers are recycled:
// a token at the default max_token_bytes (16 KiB) fits.
const maxPooledPayload = 12 << 10

// payloadPool recycles the buffers of decoded payloads on the sidecar's
// path (verify, checkInner): a cold request decodes two payloads (~4 KB),
// a third of what it allocates. Safe because nothing kept beyond
// verification aliases a payload: claims are decoded into their own
// strings (stringArena), the inner token is a copy (innerToken), and
// failures hold no token text (TestPayloadPoolNoAlias checks cached
// results against later requests).
var payloadPool = sync.Pool{New: func() any { return new([]byte) }}

// pooledPayloads makes parseToken decode p's payload into a recycled
// buffer; p.release must be called once nothing reads p.payload or
// p.members any more.
func (p *parsed) pooledPayloads() { p.pool = true }

// payloadBuf returns an empty buffer of capacity n at least for the
// payload: a recycled one when p is pooled and n is small enough.
func (p *parsed) payloadBuf(n int) []byte {
	if !p.pool || n > maxPooledPayload {
		return make([]byte, 0, n)
	}
	bp := payloadPool.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, 0, (n+1023)&^1023)
	}
	p.pooled = bp
	return (*bp)[:0]
}

// release hands p's payload buffer back to the pool, when it has one, and
// drops p's views of it.
func (p *parsed) release() {
	bp := p.pooled
	if bp == nil {
		return
	}
	p.pooled, p.payload, p.members = nil, nil, nil
	clear(p.small[:])
	payloadPool.Put(bp)
}
