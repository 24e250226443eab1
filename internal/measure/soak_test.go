package measure

import (
	"strings"
	"testing"
)

func TestJudgeSoakNamesWhatGrew(t *testing.T) {
	base := SoakReport{Produced: 10, Stored: 10, Start: SoakSample{RSSMiB: 20, Goroutines: 20}}
	tests := []struct {
		name string
		end  SoakSample
		want string
	}{
		{"steady numbers are flat", SoakSample{RSSMiB: 30, Goroutines: 22}, ""},
		{"memory that doubles is a leak", SoakSample{RSSMiB: 60, Goroutines: 20}, "RSS grew"},
		{"goroutines that pile up are a leak", SoakSample{RSSMiB: 20, Goroutines: 80}, "goroutines grew"},
		{"lag left at the end is a problem", SoakSample{RSSMiB: 20, Goroutines: 20, Lag: 5}, "lag 5"},
		{"errors are a problem", SoakSample{RSSMiB: 20, Goroutines: 20, Errors: 2}, "2 errors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			r.End = tt.end
			got := strings.Join(JudgeSoak(r), "; ")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("JudgeSoak = %q, want %q", got, tt.want)
			}
		})
	}
	short := base
	short.Stored = 5
	if p := JudgeSoak(short); len(p) == 0 {
		t.Error("orders missing at the end must be a problem")
	}
}
