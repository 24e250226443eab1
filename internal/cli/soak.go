package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/measure"
	"foodpipe/internal/report"
)

// runSoak runs the pipeline for a long time at a steady rate and watches the
// consumer for leaks. The broker and the producer run as child processes, so
// that what is measured (this process) is the consumer alone.
func runSoak(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "soak")
	if err != nil {
		return err
	}
	duration := f.Duration("duration", time.Hour, "how long to run")
	f.bind("rate", config.ProducerRate)
	every := f.Duration("sample", 10*time.Second, "how often to sample the consumer")
	asJSON := f.Bool("json", false, "print the report as one JSON object")
	userDB, err := f.ownPipelineFlags()
	if err != nil {
		return err
	}
	if lookup, err := env.lookup(); err != nil {
		return err
	} else if _, ok := lookup(config.ProducerRate.Name); !ok {
		f.cfg.ProducerRate = 100
	}
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	if *duration < 2*time.Second || *every <= 0 || *every > *duration/2 || cfg.ProducerRate <= 0 {
		return fmt.Errorf("%w: soak needs --duration of at least 2s, --sample from 0 to half the duration, and a positive --rate", ErrUsage)
	}
	pl, err := harness.Start(ctx, harness.Options{Config: cfg, Broker: harness.ChildBroker, UserDatabase: userDB(),
		DBName: "foodpipe_demo", Log: env.Log, ChildLog: env.Stderr})
	if err != nil {
		return err
	}
	defer pl.Close()
	out := env.Stdout
	if *asJSON {
		out = env.Stderr
	}
	rep, err := measure.Soak(ctx, pl, measure.SoakOptions{Duration: *duration, Every: *every, Out: out, Log: env.Log})
	if err != nil {
		return err
	}
	if err := show(env, *asJSON, rep, report.PrintSoak); err != nil {
		return err
	}
	if !rep.Flat {
		return fmt.Errorf("%w: %s", measure.ErrSoakNotFlat, strings.Join(rep.Problems, "; "))
	}
	return nil
}

// ownPipelineFlags binds --database-url and --log-level for the commands
// that run the whole pipeline themselves (demo, soak, bench). Their logs
// default to warnings, as they print their own progress. The database is
// the user's only when DATABASE_URL or --database-url names it; else they
// use one of their own. userDB tells which, once the flags are parsed.
func (f *flags) ownPipelineFlags() (userDB func() bool, err error) {
	f.bind("database-url", config.DatabaseURL)
	f.bind("log-level", config.LogLevel)
	lookup, err := f.env.lookup()
	if err != nil {
		return nil, err
	}
	_, fromEnv := lookup(config.DatabaseURL.Name)
	if _, ok := lookup(config.LogLevel.Name); !ok {
		f.cfg.LogLevel = slog.LevelWarn
	}
	return func() bool {
		set := fromEnv
		f.Visit(func(fl *flag.Flag) { set = set || fl.Name == "database-url" })
		return set
	}, nil
}
