package unwrap

import (
	"syscall"
	"testing"
	"time"
)

// reportCPU reports the process's CPU time (user + system, GC included)
// per iteration as cpu-ns/op; call its result when the loop ends. On a
// shared machine wall-clock ns/op moves with the other load, CPU time per
// operation much less (BENCHMARKS.md).
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
