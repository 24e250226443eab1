package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"foodpipe/internal/store/dbtest"
)

func TestASoakReportsTheConsumerFlatAndEveryOrderStored(t *testing.T) {
	t.Setenv(envRunAsCLI, "1")
	r := newRun(t, "DATABASE_URL", dbtest.New(t))
	if err := r.do(context.Background(), "soak", "--duration", "5s", "--sample", "1s", "--rate", "100", "--json"); err != nil {
		t.Fatalf("soak: %v\n%s", err, tail(r.stderr.String(), 3000))
	}
	var rep SoakReport
	if err := json.Unmarshal([]byte(r.stdout.String()), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, r.stdout)
	}
	if !rep.Flat || len(rep.Problems) != 0 {
		t.Errorf("not flat: %v", rep.Problems)
	}
	if rep.Produced < 490 || rep.Produced > 510 || rep.Stored != rep.Produced {
		t.Errorf("produced %d, stored %d; want about 500 each, equal", rep.Produced, rep.Stored)
	}
	// Samples every second over 5 s: at least two, even when a loaded
	// machine makes each look (status of Kafka and PostgreSQL) slow.
	if len(rep.Samples) < 2 || rep.End.RSSMiB <= 0 || rep.End.Goroutines <= 0 || rep.End.Lag != 0 {
		t.Errorf("samples %d, end %+v", len(rep.Samples), rep.End)
	}
	if !strings.Contains(r.stderr.String(), "rss") {
		t.Errorf("no progress lines:\n%s", r.stderr)
	}
}

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
			got := strings.Join(judgeSoak(r), "; ")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("judgeSoak = %q, want %q", got, tt.want)
			}
		})
	}
	short := base
	short.Stored = 5
	if p := judgeSoak(short); len(p) == 0 {
		t.Error("orders missing at the end must be a problem")
	}
}
