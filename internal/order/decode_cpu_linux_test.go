package order

import (
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// BenchmarkDecodeVsJSONText decodes the same message with Decode and with
// decodeJSONText in alternating chunks, timing each chunk by the CPU time of
// the thread that runs it, and reports each one's CPU time per message and
// their ratio. On a shared machine, other processes take the CPU away at
// random and make wall-clock ns/op of two benchmarks run one after the
// other differ by tens of percent; alternating, the two see the same load,
// and CPU time leaves out the time spent waiting for the CPU. One op is a
// chunk of each, so ns/op itself means little here.
//
//	go test -run '^$' -bench DecodeVsJSONText -count 6 ./internal/order/
func BenchmarkDecodeVsJSONText(b *testing.B) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"order", benchOrder(b).AppendJSON(nil)},
		{"refusal", []byte(with(`21.47`, `21.46`))},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			const chunk = 500
			var hand, text time.Duration
			for b.Loop() {
				t0 := threadCPUTime(b)
				for range chunk {
					_, _ = Decode(in.data) // the answers are compared by FuzzDecodeJSONTextAgreesWithDecode
				}
				t1 := threadCPUTime(b)
				for range chunk {
					_, _ = decodeJSONText(in.data)
				}
				hand, text = hand+t1-t0, text+threadCPUTime(b)-t1
			}
			n := float64(b.N * chunk)
			b.ReportMetric(float64(hand)/n, "hand-cpu-ns/msg")
			b.ReportMetric(float64(text)/n, "jsontext-cpu-ns/msg")
			b.ReportMetric(float64(text)/float64(hand), "jsontext/hand")
		})
	}
}

// threadCPUTime is the CPU time the calling thread has used, to the
// nanosecond (getrusage's RUSAGE_THREAD only moves at each scheduler tick).
func threadCPUTime(b *testing.B) time.Duration {
	const clockThreadCPUTimeID = 3 // CLOCK_THREAD_CPUTIME_ID
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		b.Fatal(errno)
	}
	return time.Duration(ts.Nano())
}
