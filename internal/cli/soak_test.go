package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"foodpipe/internal/measure"
	"foodpipe/internal/store/dbtest"
)

func TestASoakReportsTheConsumerFlatAndEveryOrderStored(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	t.Setenv(envRunAsCLI, "1")
	r := newRun(t, "DATABASE_URL", dbtest.New(t))
	if err := r.do(context.Background(), "soak", "--duration", "5s", "--sample", "1s", "--rate", "100", "--json"); err != nil {
		t.Fatalf("soak: %v\n%s", err, tail(r.stderr.String(), 3000))
	}
	var rep measure.SoakReport
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
