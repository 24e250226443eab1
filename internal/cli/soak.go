package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"foodpipe/internal/kafka"
	"foodpipe/internal/pipeline"
	"foodpipe/internal/telemetry"
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

// runSoak runs the pipeline for a long time at a steady rate and watches the
// consumer for leaks. The broker and the producer run as child processes, so
// that what is measured (this process) is the consumer alone.
func runSoak(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "soak")
	if err != nil {
		return err
	}
	duration := f.Duration("duration", time.Hour, "how long to run")
	f.bind("rate", "PRODUCER_RATE")
	every := f.Duration("sample", 10*time.Second, "how often to sample the consumer")
	asJSON := f.Bool("json", false, "print the report as one JSON object")
	userDB, err := f.ownPipelineFlags()
	if err != nil {
		return err
	}
	if lookup, err := env.lookup(); err != nil {
		return err
	} else if _, ok := lookup("PRODUCER_RATE"); !ok {
		_ = f.cfg.Set("PRODUCER_RATE", "100")
	}
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	if *duration < 2*time.Second || *every <= 0 || *every > *duration/2 || cfg.ProducerRate <= 0 {
		return fmt.Errorf("%w: soak needs --duration of at least 2s, --sample from 0 to half the duration, and a positive --rate", ErrUsage)
	}
	pl, err := pipeline.Start(ctx, pipeline.Options{Config: cfg, Broker: pipeline.ChildBroker, UserDatabase: userDB(),
		DBName: "foodpipe_demo", Log: env.Log, ChildLog: env.Stderr})
	if err != nil {
		return err
	}
	defer pl.Close()
	cfg, st := pl.Config, pl.Store
	c, err := pl.Consumer(ctx, "soak", telemetry.NewMetrics(), nil)
	if err != nil {
		return err
	}
	cctx, stopConsumer := context.WithCancel(context.WithoutCancel(ctx))
	consumed := make(chan error, 1)
	go func() { consumed <- c.Run(cctx) }()
	defer func() { stopConsumer(); <-consumed }() //nolint:errcheck // the report says how the run went

	adm, closeAdm, err := pl.Admin(ctx)
	if err != nil {
		return err
	}
	defer closeAdm()
	producer, err := pl.Spawn("producer", pl.ChildEnv("LOG_LEVEL=warn"), "produce",
		"--rate", strconv.FormatFloat(cfg.ProducerRate, 'f', -1, 64), "--duration", duration.String())
	if err != nil {
		return err
	}

	out := env.Stdout
	if *asJSON {
		out = env.Stderr
	}
	begin := time.Now()
	rep := SoakReport{Rate: cfg.ProducerRate}
	sample := func() (SoakSample, error) {
		s := SoakSample{At: time.Since(begin).Seconds(), Goroutines: runtime.NumGoroutine()}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.HeapMiB = float64(ms.HeapInuse) / (1 << 20)
		s.RSSMiB = rssMiB()
		status, err := readStatus(ctx, adm, st, nil, cfg)
		if err != nil {
			return s, err
		}
		s.Lag = status.Lag()
		cs := c.Stats()
		s.Stored, s.Errors = cs.Processed, cs.Failures+cs.Invalid
		return s, nil
	}
	fmt.Fprintf(out, "soak: %v at %.0f orders/s, sampling every %v\n", *duration, cfg.ProducerRate, *every)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-producer.Done():
			running = false
		case <-tick.C:
		}
		s, err := sample()
		if err != nil {
			return err
		}
		rep.Samples = append(rep.Samples, s)
		fmt.Fprintf(out, "%6.0fs  rss %6.1f MiB  heap %6.1f MiB  goroutines %4d  lag %6d  stored %8d  errors %d\n",
			s.At, s.RSSMiB, s.HeapMiB, s.Goroutines, s.Lag, s.Stored, s.Errors)
	}
	if err := producer.Wait(); err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	// Drain what is left, then take the final sample.
	drainBy := time.Now().Add(30 * time.Second)
	var end SoakSample
	for {
		if end, err = sample(); err != nil {
			return err
		}
		if end.Lag == 0 || time.Now().After(drainBy) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.Seconds = time.Since(begin).Seconds()
	rep.Stored = c.Stats().Processed
	if t, err := kafka.DescribeTopic(ctx, adm, cfg.Topic); err == nil {
		for _, p := range t.Partitions {
			rep.Produced += p.HighWatermark - p.StartOffset
		}
	}
	rep.Start, rep.End = warmSample(rep.Samples), end
	rep.Problems = judgeSoak(rep)
	rep.Flat = len(rep.Problems) == 0
	if *asJSON {
		if err := json.NewEncoder(env.Stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		printSoak(env.Stdout, rep)
	}
	if !rep.Flat {
		return fmt.Errorf("%w: %s", ErrSoakNotFlat, strings.Join(rep.Problems, "; "))
	}
	return nil
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

// judgeSoak lists what did not stay flat. The allowances are for noise, not
// for growth: memory may vary by a quarter plus 16 MiB (GC timing), a few
// goroutines come and go with connections, and the lag must be drained.
func judgeSoak(r SoakReport) []string {
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

func printSoak(w io.Writer, r SoakReport) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\n\tafter warm-up (%.0fs)\tat the end (%.0fs)\n", r.Start.At, r.End.At)
	fmt.Fprintf(tw, "RSS MiB\t%.1f\t%.1f\n", r.Start.RSSMiB, r.End.RSSMiB)
	fmt.Fprintf(tw, "heap MiB\t%.1f\t%.1f\n", r.Start.HeapMiB, r.End.HeapMiB)
	fmt.Fprintf(tw, "goroutines\t%d\t%d\n", r.Start.Goroutines, r.End.Goroutines)
	fmt.Fprintf(tw, "lag\t%d\t%d\n", r.Start.Lag, r.End.Lag)
	fmt.Fprintf(tw, "errors\t%d\t%d\n", r.Start.Errors, r.End.Errors)
	_ = tw.Flush() // a report that cannot be written has nowhere to say so
	fmt.Fprintf(w, "produced %d, stored %d in %.0fs: ", r.Produced, r.Stored, r.Seconds)
	if r.Flat {
		fmt.Fprintln(w, "flat")
	} else {
		fmt.Fprintln(w, "NOT flat: "+strings.Join(r.Problems, "; "))
	}
}

// rssMiB is this process's resident set size.
func rssMiB() float64 { return pipeline.ProcStatusMiB(os.Getpid(), "VmRSS") }

// ownPipelineFlags binds --database-url and --log-level for the commands
// that run the whole pipeline themselves (demo, soak, bench). Their logs
// default to warnings, as they print their own progress. The database is
// the user's only when DATABASE_URL or --database-url names it; else they
// use one of their own. userDB tells which, once the flags are parsed.
func (f *flags) ownPipelineFlags() (userDB func() bool, err error) {
	f.bind("database-url", "DATABASE_URL")
	f.bind("log-level", "LOG_LEVEL")
	lookup, err := f.env.lookup()
	if err != nil {
		return nil, err
	}
	_, fromEnv := lookup("DATABASE_URL")
	if _, ok := lookup("LOG_LEVEL"); !ok {
		_ = f.cfg.Set("LOG_LEVEL", "warn")
	}
	return func() bool {
		set := fromEnv
		f.Visit(func(fl *flag.Flag) { set = set || fl.Name == "database-url" })
		return set
	}, nil
}
