package telemetry

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestEveryCallsUntilStoppedAndNeverAfter(t *testing.T) {
	var n atomic.Int64
	stop := Every(5*time.Millisecond, func() { n.Add(1) })
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("fn was not called twice")
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	stop() // a second stop is harmless
	after := n.Load()
	time.Sleep(20 * time.Millisecond)
	if n.Load() != after {
		t.Errorf("fn ran after stop")
	}
}

func TestEveryWithNoIntervalNeverCalls(t *testing.T) {
	called := false
	stop := Every(0, func() { called = true })
	time.Sleep(10 * time.Millisecond)
	stop()
	if called {
		t.Error("fn was called")
	}
}
