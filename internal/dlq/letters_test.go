package dlq_test

import (
	"encoding/json"
	"flag"
	"slices"
	"testing"

	"foodpipe/internal/dlq"
)

var _ flag.Value = (*dlq.Offsets)(nil)

func TestALetterIsChosenByReasonAndOffset(t *testing.T) {
	l := dlq.Letter{Offset: 4, Reason: "not_json"}
	tests := []struct {
		name    string
		reason  string
		offsets dlq.Offsets
		want    bool
	}{
		{"no reason and no offsets choose every letter", "", nil, true},
		{"its reason chooses it", "not_json", nil, true},
		{"another reason does not", "missing_field", nil, false},
		{"its offset among others chooses it", "", dlq.Offsets{1, 4}, true},
		{"other offsets do not", "", dlq.Offsets{1, 2}, false},
		{"its offset with another reason does not", "missing_field", dlq.Offsets{4}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Is(tt.reason, tt.offsets); got != tt.want {
				t.Errorf("Is(%q, %v) = %v, want %v", tt.reason, tt.offsets, got, tt.want)
			}
		})
	}
}

// Listed, the source's partition and offset are numbers, or null when the
// headers hold none; the letter's own fields are kept.
func TestListedGivesTheSourcePositionAsNumbers(t *testing.T) {
	tests := []struct {
		name string
		l    dlq.Letter
		want string
	}{
		{"a letter from the consumer", dlq.Letter{Partition: 0, Offset: 2, Reason: "missing_field", SourceTopic: "food-orders", SourcePartition: "0", SourceOffset: "5", Key: "k3"},
			`{"partition":0,"offset":2,"reason":"missing_field","error":"","source_topic":"food-orders","failed_at":"","key":"k3","value":"","source_partition":0,"source_offset":5}`},
		{"a message without the headers", dlq.Letter{Offset: 7, SourcePartition: "", SourceOffset: "x", ReplayedAt: "12:00"},
			`{"partition":0,"offset":7,"reason":"","error":"","source_topic":"","failed_at":"","key":"","value":"","replayed_at":"12:00","source_partition":null,"source_offset":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.l.Listed())
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("listed as\n%s\nwant\n%s", b, tt.want)
			}
		})
	}
}

func TestInWordsGivesTheErrorWithoutRepeatingTheReason(t *testing.T) {
	tests := []struct{ reason, err, want string }{
		{"not_json", `invalid order: not_json: "not" at byte 0 is not a JSON value`, `"not" at byte 0 is not a JSON value`},
		{"conflicting_duplicate", "order ORD-1 stored with other content", "order ORD-1 stored with other content"},
	}
	for _, tt := range tests {
		if got := (dlq.Letter{Reason: tt.reason, Error: tt.err}).InWords(); got != tt.want {
			t.Errorf("InWords of (%q, %q) = %q, want %q", tt.reason, tt.err, got, tt.want)
		}
	}
}

func TestChainSaysWhereALetterStandsInItsReplays(t *testing.T) {
	tests := []struct {
		name string
		l    dlq.Letter
		want string
	}{
		{"a letter never replayed says nothing", dlq.Letter{}, ""},
		{"a replayed letter says when", dlq.Letter{ReplayedAt: "2025-01-02T03:04:05Z"}, "  [replayed at 2025-01-02T03:04:05Z]"},
		{"a letter from a replay names its original, and a cut-down one where it is whole",
			dlq.Letter{ReplayedFrom: "food-orders.dlq/0/1", Truncated: true, StoredAs: "dead_letters/9"},
			"  [failed again after the replay of food-orders.dlq/0/1; cut down; whole in dead_letters/9]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.l.Chain(); got != tt.want {
				t.Errorf("Chain() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOffsetsReadCommaSeparatedAndRepeated(t *testing.T) {
	var o dlq.Offsets
	for _, s := range []string{"3", "1, 7"} {
		if err := o.Set(s); err != nil {
			t.Fatalf("Set(%q): %v", s, err)
		}
	}
	if !slices.Equal(o, dlq.Offsets{3, 1, 7}) {
		t.Errorf("offsets %v, want [3 1 7]", o)
	}
	for _, bad := range []string{"x", "-1", "1,,2"} {
		var o dlq.Offsets
		if err := o.Set(bad); err == nil {
			t.Errorf("Set(%q) = nil, want an error", bad)
		}
	}
}
