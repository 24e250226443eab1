package measure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/kafka"
	"foodpipe/internal/wire"
)

// SoakSample is one look at the consumer during a soak run.
type SoakSample struct {
	At         float64 `json:"at_s"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_mib"`
	Goroutines int     `json:"goroutines"`
	Lag        int64   `json:"lag"`
	Stored     int64   `json:"stored"`
	Errors     int64   `json:"errors"`
}

// SoakReport compares the consumer after warm-up with the consumer at the end.
type SoakReport struct {
	Rate     float64      `json:"rate"`
	Seconds  float64      `json:"seconds"`
	Produced int64        `json:"produced"`
	Stored   int64        `json:"stored"`
	Start    SoakSample   `json:"start"`
	End      SoakSample   `json:"end"`
	Samples  []SoakSample `json:"samples"`
	Flat     bool         `json:"flat"`
	Problems []string     `json:"problems"`
}

// ErrSoakNotFlat means memory, goroutines, lag or errors grew during a soak.
var ErrSoakNotFlat = errors.New("soak: the consumer did not stay flat")

// SoakOptions say how long a soak runs and how often it samples.
type SoakOptions struct {
	Duration, Every time.Duration
	// Out is told each sample as it is taken.
	Out io.Writer
	Log *slog.Logger
}

// Soak runs pl for a long time at the configured producer rate and watches
// the consumer for leaks. The broker and the producer are child processes
// (pl's broker should be harness.ChildBroker), so that what is measured,
// this process, is the consumer alone.
func Soak(ctx context.Context, pl *harness.Pipeline, o SoakOptions) (SoakReport, error) {
	cfg, out := pl.Config, o.Out
	c, err := pl.Consumer(ctx, "soak", wire.NewMetrics(""), nil)
	if err != nil {
		return SoakReport{}, err
	}
	cctx, stopConsumer := context.WithCancel(context.WithoutCancel(ctx))
	consumed := make(chan error, 1)
	go func() { consumed <- c.Run(cctx) }()
	defer func() { stopConsumer(); <-consumed }() //nolint:errcheck // the report says how the run went

	adm, closeAdm, err := pl.Admin(ctx)
	if err != nil {
		return SoakReport{}, err
	}
	defer closeAdm()
	producer, err := pl.Spawn("producer", pl.ChildEnv(func(c *config.Config) { c.LogLevel = slog.LevelWarn }), "produce",
		"--rate", strconv.FormatFloat(cfg.ProducerRate, 'f', -1, 64), "--duration", o.Duration.String())
	if err != nil {
		return SoakReport{}, err
	}

	begin := time.Now()
	rep := SoakReport{Rate: cfg.ProducerRate}
	sample := func() (SoakSample, error) {
		s := SoakSample{At: time.Since(begin).Seconds(), Goroutines: runtime.NumGoroutine()}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.HeapMiB = float64(ms.HeapInuse) / (1 << 20)
		s.RSSMiB = rssMiB()
		view, err := kafka.InspectGroup(ctx, adm, cfg.Topic, cfg.Group)
		if err != nil {
			return s, err
		}
		s.Lag = view.Lag()
		cs := c.Stats()
		s.Stored, s.Errors = cs.Processed, cs.Failures+cs.Invalid
		return s, nil
	}
	fmt.Fprintf(out, "soak: %v at %.0f orders/s, sampling every %v\n", o.Duration, cfg.ProducerRate, o.Every)
	tick := time.NewTicker(o.Every)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-ctx.Done():
			return SoakReport{}, ctx.Err()
		case <-producer.Done():
			running = false
		case <-tick.C:
		}
		s, err := sample()
		if err != nil {
			return SoakReport{}, err
		}
		rep.Samples = append(rep.Samples, s)
		fmt.Fprintf(out, "%6.0fs  rss %6.1f MiB  heap %6.1f MiB  goroutines %4d  lag %6d  stored %8d  errors %d\n",
			s.At, s.RSSMiB, s.HeapMiB, s.Goroutines, s.Lag, s.Stored, s.Errors)
	}
	if err := producer.Wait(); err != nil {
		return SoakReport{}, fmt.Errorf("producer: %w", err)
	}
	// Drain what is left, then take the final sample.
	drainBy := time.Now().Add(30 * time.Second)
	var end SoakSample
	for {
		if end, err = sample(); err != nil {
			return SoakReport{}, err
		}
		if end.Lag == 0 || time.Now().After(drainBy) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.Seconds = time.Since(begin).Seconds()
	rep.Stored = c.Stats().Processed
	if rep.Produced, err = kafka.Messages(ctx, adm, cfg.Topic); err != nil {
		return SoakReport{}, err
	}
	rep.Start, rep.End = warmSample(rep.Samples), end
	rep.Problems = JudgeSoak(rep)
	rep.Flat = len(rep.Problems) == 0
	return rep, nil
}

// warmSample is the baseline: the first sample after a tenth of the run, when
// pools, buffers and the group have settled.
func warmSample(ss []SoakSample) SoakSample {
	if len(ss) == 0 {
		return SoakSample{}
	}
	last := ss[len(ss)-1].At
	for _, s := range ss {
		if s.At >= last/10 {
			return s
		}
	}
	return ss[0]
}

// JudgeSoak lists what did not stay flat. The allowances are for noise, not
// for growth: memory may vary by a quarter plus 16 MiB (GC timing), a few
// goroutines come and go with connections, and the lag must be drained.
func JudgeSoak(r SoakReport) []string {
	var p []string
	if r.End.RSSMiB > r.Start.RSSMiB*1.25+16 {
		p = append(p, fmt.Sprintf("RSS grew from %.1f to %.1f MiB", r.Start.RSSMiB, r.End.RSSMiB))
	}
	if r.End.Goroutines > r.Start.Goroutines+10 {
		p = append(p, fmt.Sprintf("goroutines grew from %d to %d", r.Start.Goroutines, r.End.Goroutines))
	}
	if r.End.Lag != 0 {
		p = append(p, fmt.Sprintf("lag %d at the end", r.End.Lag))
	}
	if r.End.Errors != 0 {
		p = append(p, fmt.Sprintf("%d errors", r.End.Errors))
	}
	if r.Produced == 0 || r.Stored < r.Produced {
		p = append(p, fmt.Sprintf("stored %d of %d produced", r.Stored, r.Produced))
	}
	return p
}

// rssMiB is this process's resident set size.
func rssMiB() float64 { return harness.ProcStatusMiB(os.Getpid(), "VmRSS") }
