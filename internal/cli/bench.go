package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/measure"
	"foodpipe/internal/report"
	"foodpipe/internal/secret"
)

// ErrBenchTargetMissed is returned with --check when a target is not met.
var ErrBenchTargetMissed = errors.New("bench: a target was missed")

// runBench measures the pipeline (see measure.Bench) on an embedded broker
// and a database of its own, and prints the report.
func runBench(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "bench")
	if err != nil {
		return err
	}
	orders := f.Int("orders", 500_000, "orders preloaded for each drain")
	ratesFlag := f.String("rates", "10,1000,10000", "fixed rates (orders/s) for latency and producer accuracy")
	rateFor := f.Duration("rate-duration", 10*time.Second, "how long each fixed rate runs")
	scaling := f.Bool("scaling", true, "also drain with 1, 2 and 3 consumers on 3 and on 6 partitions")
	asJSON := f.Bool("json", false, "print the report as one JSON object")
	check := f.Bool("check", false, "exit non-zero when a target is missed")
	autovacuum := f.Bool("autovacuum", false, "leave PostgreSQL's autovacuum on for the orders table while measuring")
	prefill := f.Int("prefill", 0, "also drain into a table already holding this many orders (e.g. 10000000), against a COPY into it")
	redelivery := f.Bool("redelivery", false, "also drain onto orders half of which are stored already, and onto conflicting copies")
	producerLimit := f.Bool("producer-limit", false, "also hold the producer against franz-go producing pre-encoded records")
	dial := f.Bool("latency-dial", false, "also sweep PRODUCER_LINGER (0, 1, 5, 20 ms) and CONSUMER_FETCH_MAX_WAIT (10, 250 ms) at 100, 1,000 and 10,000 orders/s, --rate-duration each")
	dialRates := f.String("dial-rates", "100,1000,10000", "the rates --latency-dial sweeps at")
	chart := f.String("chart", "bench-latency.svg", "with --latency-dial, the chart of p99 against linger, an SVG file")
	lowRate := f.Bool("low-rate", false, "also measure what each process (broker, producer, consumer, analytics) costs at 10, 100 and 1,000 orders/s, --low-rate-duration each, and idle")
	lowRateFor := f.Duration("low-rate-duration", 30*time.Second, "with --low-rate, how long each rate is measured (after a 5s warm-up)")
	idleFor := f.Duration("idle-duration", 60*time.Second, "with --low-rate, how long the idle pipeline is measured")
	protocols := f.Bool("protocols", false, "also run a kill storm, a hand-over (one of 3 members stopped) and a member joining (2 to 3) under each group protocol, classic then consumer, and measure the stalls")
	protocolOrders := f.Int("protocol-orders", 20_000, "with --protocols, orders produced in each scenario")
	protocolRate := f.Float64("protocol-rate", 1000, "with --protocols, orders/s produced in each scenario")
	kills := f.Int("kills", 50, "with --protocols, SIGKILLs of the kill storm, 0.3–2s apart")
	rounds := f.Int("rounds", 3, "rounds of the prefill, re-delivery and producer phases, for min/median/max")
	f.bind("batch-size", config.ConsumerBatchSize)
	f.bind("writers", config.ConsumerWriters)
	f.bind("session-timeout", config.ConsumerSessionTimeout)
	userDB, err := f.ownPipelineFlags()
	if err != nil {
		return err
	}
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	rates, err := measure.ParseRates(*ratesFlag)
	var dialAt []float64
	if err == nil && *dial {
		dialAt, err = measure.ParseRates(*dialRates)
	}
	if err != nil || *orders < 1 || *rateFor < 100*time.Millisecond || *lowRateFor < time.Second || *idleFor < time.Second || *prefill < 0 || *rounds < 1 ||
		*protocolOrders < 1 || !(*protocolRate > 0 && *protocolRate <= 1e6) || *kills < 1 {
		return fmt.Errorf("%w: bench needs --orders of at least 1, --rates (and --dial-rates) as positive numbers separated by commas, --rate-duration of at least 100ms, --low-rate-duration and --idle-duration of at least 1s, --prefill of 0 or more, --rounds of at least 1, --protocol-orders and --kills of at least 1, --protocol-rate above 0 and at most a million", ErrUsage)
	}
	var protocolsOf *measure.ProtocolOptions
	if *protocols {
		protocolsOf = &measure.ProtocolOptions{Orders: *protocolOrders, Rate: *protocolRate, Kills: *kills}
	}
	out := env.Stdout
	if *asJSON {
		out = env.Stderr
	}

	pl, err := harness.Start(ctx, harness.Options{Config: cfg, UserDatabase: userDB(), DBName: "foodpipe_bench", Log: env.Log})
	if err != nil {
		return err
	}
	defer pl.Close()
	if n, err := pl.Store.Count(ctx); err != nil {
		return err
	} else if n > 0 && userDB() {
		return fmt.Errorf("bench empties the orders table, and %s holds %d orders: give it a database of its own", secret.RedactURL(pl.DB.URL), n)
	}

	rep, err := measure.Bench(ctx, pl, measure.BenchOptions{Orders: *orders, Rates: rates, RateFor: *rateFor,
		Scaling: *scaling, Autovacuum: *autovacuum, Prefill: *prefill, Redelivery: *redelivery, ProducerLimit: *producerLimit,
		LatencyDial: *dial, DialRates: dialAt, Chart: *chart, LowRate: *lowRate, LowRateFor: *lowRateFor, IdleFor: *idleFor,
		Protocols: protocolsOf, Rounds: *rounds, Out: out, Log: env.Log})
	if err != nil {
		return err
	}
	if err := show(env, *asJSON, rep, report.PrintBench); err != nil {
		return err
	}
	if *check {
		for _, t := range rep.Targets {
			if !t.Met {
				return fmt.Errorf("%w: %s: want %s, got %s", ErrBenchTargetMissed, t.Name, t.Want, t.Got)
			}
		}
	}
	return nil
}
