// Package netlimit bounds the connections a listener keeps open: Accept
// waits for a free slot, so that connections beyond the limit wait in the
// kernel's backlog instead of costing a goroutine, buffers and a
// descriptor each. It imports nothing of embedtoken.
package netlimit
