package measure

import (
	"testing"
	"time"
)

// samples feeds a watch one sample a second from t0: each string says, per
// partition 0, 1, 2, whether it flowed ('.') or not ('x'); the pipeline
// flows when any partition does.
func samples(w *StallWatch, t0 time.Time, rows ...string) {
	for i, row := range rows {
		parts := map[int32]bool{}
		any := false
		for p, c := range row {
			parts[int32(p)] = c == '.'
			any = any || c == '.'
		}
		w.sample(t0.Add(time.Duration(i)*time.Second), any, parts)
	}
}

func TestAStallWatchMeasuresThePipelineAndEachPartition(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	w := &StallWatch{psince: map[int32]time.Time{}}
	// 0 flows; at 1 partition 2 stops for 2 s; at 4 every partition stops
	// for 3 s; at 8 partition 0 stops until the end (10).
	samples(w, t0, "...", "..x", "..x", "...", "xxx", "xxx", "xxx", "...", "x..", "x..", "...")

	if l := w.Longest(); l.Partition != -1 || !l.From.Equal(at(4)) || l.Took != 3*time.Second {
		t.Errorf("longest stall of the pipeline %+v, want 3s from 4s", l)
	}
	if l := w.LongestPartition(); l.Took != 3*time.Second || !l.From.Equal(at(4)) {
		t.Errorf("longest stall of a partition %+v, want 3s from 4s", l)
	}
	if got := len(w.PartitionStalls(0)); got != 5 {
		t.Errorf("%d partition stalls, want 5: %+v", got, w.PartitionStalls(0))
	}
	if got := len(w.PartitionStalls(2500 * time.Millisecond)); got != 3 {
		t.Errorf("%d partition stalls of 2.5s or more, want the 3 of the whole pipeline's", got)
	}
	tests := []struct {
		name     string
		from, to int
		min      time.Duration
		want     int
	}{
		{"a change before one partition's stall stopped it", 1, 3, time.Second, 1},
		{"a change before every partition's stall stopped all three", 4, 6, time.Second, 3},
		{"stalls shorter than the least that counts are not stops", 8, 11, 3 * time.Second, 0},
		{"a stall under way at the change is not stopped by it", 5, 8, time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := w.PartitionsStopped(at(tt.from), at(tt.to), tt.min); got != tt.want {
				t.Errorf("PartitionsStopped(%d s, %d s) = %d, want %d", tt.from, tt.to, got, tt.want)
			}
		})
	}
	if d := w.StalledAfter(at(5)); d != 2*time.Second {
		t.Errorf("stalled %v after 5s, want 2s (until 7s)", d)
	}
	if d := w.StalledAfter(at(8)); d != 0 {
		t.Errorf("stalled %v after 8s, when the pipeline flowed, want 0", d)
	}
	if d := w.FlowingAgainAfter(at(3), 2*time.Second, time.Second); d != 4*time.Second {
		t.Errorf("flowing again %v after 3s, want 4s (the stall begun at 4s, within 2s, ends at 7s)", d)
	}
	if d := w.FlowingAgainAfter(at(0), 2*time.Second, time.Second); d != 3*time.Second {
		t.Errorf("flowing again %v after 0s, want 3s (partition 2 stopped from 1s to 3s)", d)
	}
	if d := w.FlowingAgainAfter(at(7), 0, time.Second); d != 0 {
		t.Errorf("flowing again %v after 7s with no stall under way, want 0", d)
	}
}
