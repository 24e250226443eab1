// Package harness assembles a whole foodpipe for the commands that run one
// (demo, lab, bench, soak) and for the tests: a broker
// (embedded in this process, a `foodpipe broker` child, or the user's
// cluster), a database (the user's, or one found or started by localpg, with
// the migrations applied), and producers and consumers, in this process or
// as `foodpipe` child processes. The demo, soak, bench and lab commands run
// on it. It builds each part through package wire, as the commands that run
// one part (produce, consume) do.
//
// What happens is told as typed events: consumers in this process publish
// consumer.Event through the observer each is given, and the harness tells
// its own (a child process ended) through Options.Observe. Whoever watches
// keeps the history it needs.
package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/kafka"
	"foodpipe/internal/localpg"
	"foodpipe/internal/store"
	"foodpipe/internal/telemetry"
	"foodpipe/internal/wire"
)

// BrokerMode says where the pipeline's Kafka comes from.
type BrokerMode int

const (
	// EmbeddedBroker runs kfake in this process: the fastest to start.
	EmbeddedBroker BrokerMode = iota
	// ChildBroker runs `foodpipe broker` as a child process with a data
	// directory, so that it can be stopped and restarted with its topics,
	// messages and committed offsets kept.
	ChildBroker
	// ExternalBroker uses Config.Brokers as given: a real cluster.
	ExternalBroker
)

// Options say how to assemble a pipeline.
type Options struct {
	// Config is the validated configuration. Brokers and DatabaseURL are
	// replaced by what the harness starts or finds, unless the user named
	// them (ExternalBroker, UserDatabase).
	Config config.Config
	Broker BrokerMode
	// UserDatabase means DATABASE_URL is the user's choice and is used as
	// given; otherwise the database named DBName is found on the local
	// server or on a temporary one (localpg).
	UserDatabase bool
	DBName       string
	// Fresh empties the harness's own database at start (store.Empty), so
	// that what a run shows is its own; a database the user named
	// (UserDatabase) is never emptied, only read and added to.
	Fresh bool
	Log   *slog.Logger
	// ClientLog takes the log lines of the Kafka clients the pipeline
	// builds in this process (franz-go's own); nil sends them to Log. A
	// view drawn on the terminal the log goes to gives them another.
	ClientLog *slog.Logger
	// ChildLog receives the standard error of child processes as well; nil
	// keeps it only for failure reports.
	ChildLog io.Writer
	// Observe is told the harness's own events. It must not block.
	Observe func(Event)
}

// Event is something the harness saw happen: ProcessExited or BrokerRestarted.
type Event interface{ event() }

// ProcessExited: a child process ended, by itself or because it was stopped.
type ProcessExited struct {
	At   time.Time
	Name string
	Pid  int
	// Err is how it ended: nil for exit code 0, else the exit status (a
	// SIGKILL reads "signal: killed").
	Err error
}

// BrokerRestarted: the child broker was stopped and started again.
type BrokerRestarted struct {
	At   time.Time
	Down time.Duration
}

func (ProcessExited) event()   {}
func (BrokerRestarted) event() {}

// Pipeline is an assembled pipeline. Close it when done.
type Pipeline struct {
	// Config is the configuration in effect: Brokers and DatabaseURL point
	// at what the harness started or found.
	Config config.Config
	DB     *localpg.DB
	Store  *store.Store
	// Exe is the foodpipe binary children run.
	Exe string

	log       *slog.Logger
	clientLog *slog.Logger
	childLog  io.Writer
	observe   func(Event)

	broker    *kafka.Broker // EmbeddedBroker
	brokerDir string        // ChildBroker: its data directory
	mu        sync.Mutex
	brokerP   *Process // ChildBroker
	children  []*Process
}

// Start assembles the pipeline: the broker first, then the database with
// the migrations applied.
func Start(ctx context.Context, o Options) (_ *Pipeline, err error) {
	p := &Pipeline{Config: o.Config, log: o.Log, clientLog: o.ClientLog, childLog: o.ChildLog, observe: o.Observe}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.clientLog == nil {
		p.clientLog = p.log
	}
	if p.observe == nil {
		p.observe = func(Event) {}
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if p.Exe, err = os.Executable(); err != nil {
		return nil, fmt.Errorf("find the foodpipe binary: %w", err)
	}
	switch o.Broker {
	case EmbeddedBroker:
		if p.broker, err = kafka.StartBroker(kafka.BrokerOptions{Listen: "127.0.0.1:0", GroupSessionTimeout: p.Config.SessionTimeout}); err != nil {
			return nil, err
		}
		p.Config.Brokers = []string{p.broker.Addr()}
	case ChildBroker:
		addr, err := FreeLoopback()
		if err != nil {
			return nil, err
		}
		if p.brokerDir, err = os.MkdirTemp("", "foodpipe-broker-"); err != nil {
			return nil, fmt.Errorf("broker data directory: %w", err)
		}
		p.Config.Brokers = []string{addr}
		if err := p.startBroker(ctx); err != nil {
			return nil, err
		}
	case ExternalBroker:
	}

	u := ""
	if o.UserDatabase {
		u = o.Config.DatabaseURL
	}
	if p.DB, err = localpg.Resolve(ctx, localpg.Options{DatabaseURL: u, DBName: o.DBName, Logger: p.log}); err != nil {
		return nil, err
	}
	p.Config.DatabaseURL = p.DB.URL
	if p.Store, err = wire.OpenStore(ctx, p.Config, true); err != nil {
		return nil, err
	}
	if o.Fresh && !o.UserDatabase {
		if err := p.Store.Empty(ctx); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// BrokerAddr is the first broker's address.
func (p *Pipeline) BrokerAddr() string { return p.Config.Brokers[0] }

// Close stops the children (consumers before the broker), then closes the
// store, the database and the broker.
func (p *Pipeline) Close() {
	p.mu.Lock()
	kids, b := p.children, p.brokerP
	p.children, p.brokerP = nil, nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range kids {
		wg.Go(func() { _ = c.Stop(10 * time.Second) }) // how it ended was told as an event
	}
	wg.Wait()
	if b != nil {
		_ = b.Stop(10 * time.Second)
	}
	if p.brokerDir != "" {
		_ = os.RemoveAll(p.brokerDir) // a temporary directory: nothing to keep
	}
	if p.Store != nil {
		p.Store.Close()
	}
	if p.DB != nil {
		p.DB.Close()
	}
	if p.broker != nil {
		p.broker.Close()
	}
}

// Consumer builds a member of the pipeline's group named id, in this
// process, on the pipeline's store. Run it with its Run method.
func (p *Pipeline) Consumer(ctx context.Context, id string, m *telemetry.Metrics, observe func(consumer.Event)) (*consumer.Consumer, error) {
	return wire.NewConsumer(ctx, p.Config, p.Store, id, p.log, p.clientLog, m, observe)
}

// AnalyticsConsumer builds a member of the pipeline's analytics group named
// id, in this process: it keeps the aggregates (store.Analytics).
func (p *Pipeline) AnalyticsConsumer(ctx context.Context, id string, m *telemetry.Metrics, observe func(consumer.Event)) (*consumer.Consumer, error) {
	cfg := p.Config
	cfg.Group = cfg.AnalyticsGroup
	return wire.NewConsumer(ctx, cfg, p.Store.Analytics(), id, p.log, p.clientLog, m, observe)
}

// NotifyConsumer builds a member of the pipeline's notifications group
// named id, in this process: it emails each order's customer through
// smtpURL's mail server (package notify), NOTIFY_BATCH_SIZE orders a batch.
func (p *Pipeline) NotifyConsumer(ctx context.Context, id, smtpURL string, m *telemetry.Metrics, observe func(consumer.Event)) (*consumer.Consumer, error) {
	cfg := p.Config
	cfg.Group, cfg.BatchSize, cfg.SMTPURL = cfg.NotifyGroup, cfg.NotifyBatchSize, smtpURL
	st, err := wire.NotifyStore(cfg, p.Store, m, p.log)
	if err != nil {
		return nil, err
	}
	return wire.NewConsumer(ctx, cfg, st, id, p.log, p.clientLog, m, observe)
}

// ProducerClient is a producer client for cfg (the pipeline's Config, or a
// copy with another topic), with the topics made.
func (p *Pipeline) ProducerClient(ctx context.Context, cfg config.Config, m *telemetry.Metrics) (*kgo.Client, error) {
	return wire.ProducerClient(ctx, cfg, p.log, p.clientLog, m)
}

// TransactionalClient is a transactional producer client for cfg, with the
// transactional id and the transaction timeout given
// (wire.TransactionalProducerClient).
func (p *Pipeline) TransactionalClient(ctx context.Context, cfg config.Config, id string, timeout time.Duration) (*kgo.Client, error) {
	return wire.TransactionalProducerClient(ctx, cfg, id, timeout, p.log, p.clientLog, nil)
}

// Admin is an admin client on the pipeline's brokers; call the func to close it.
func (p *Pipeline) Admin(ctx context.Context) (*kadm.Client, func(), error) {
	return wire.Admin(ctx, p.Config, p.clientLog)
}

// ChildEnv is the environment of a foodpipe child: this process's, then
// every variable of the pipeline's configuration (its broker, topics and
// database, with the migrations left to the harness, which applied them)
// as edit, when not nil, changes it, so that a child runs on the
// configuration it is given whatever the environment or a .env file says.
// extra (NAME=value) comes last and wins: it is for what is not a setting
// (GOMEMLIMIT, FOODPIPE_FAULT).
func (p *Pipeline) ChildEnv(edit func(*config.Config), extra ...string) []string {
	c := p.Config
	c.Migrate = false
	if edit != nil {
		edit(&c)
	}
	return append(append(os.Environ(), config.Environ(c)...), extra...)
}

// Spawn starts `foodpipe args...` as a child named name, with env (see
// ChildEnv). The harness stops it on Close and tells when it ends.
func (p *Pipeline) Spawn(name string, env []string, args ...string) (*Process, error) {
	// Held across the start, so that a child ending at once is taken out
	// of the list after it was put in.
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := Spawn(Command{Name: name, Exe: p.Exe, Args: args, Env: env, Log: p.childLog, onExit: func(c *Process) {
		p.mu.Lock()
		p.children = slices.DeleteFunc(p.children, func(k *Process) bool { return k == c })
		p.mu.Unlock()
		p.observe(ProcessExited{At: time.Now(), Name: c.Name, Pid: c.Pid(), Err: c.err})
	}})
	if err != nil {
		return nil, err
	}
	p.children = append(p.children, c)
	return c, nil
}

// SpawnConsumer starts `foodpipe consume --id id` as a child, configured as
// ChildEnv says with edit and extra. Each child serves its metrics and
// readiness on a METRICS_ADDR of its own (Process.MetricsAddr), so that
// several can run side by side and be read apart; edit may set another.
func (p *Pipeline) SpawnConsumer(id string, edit func(*config.Config), extra ...string) (*Process, error) {
	addr, err := FreeLoopback()
	if err != nil {
		return nil, err
	}
	env := p.ChildEnv(func(c *config.Config) {
		c.MetricsAddr = addr
		if edit != nil {
			edit(c)
		}
	}, extra...)
	return p.Spawn(id, env, "consume", "--id", id)
}

// SpawnNotifier starts `foodpipe notify --id id` as a child, a member of
// the notifications group sending to smtpURL, with its metrics on a
// METRICS_ADDR of its own, as SpawnConsumer does.
func (p *Pipeline) SpawnNotifier(id, smtpURL string, edit func(*config.Config), extra ...string) (*Process, error) {
	addr, err := FreeLoopback()
	if err != nil {
		return nil, err
	}
	env := p.ChildEnv(func(c *config.Config) {
		c.MetricsAddr, c.SMTPURL = addr, smtpURL
		if edit != nil {
			edit(c)
		}
	}, extra...)
	return p.Spawn(id, env, "notify", "--id", id)
}

// startBroker starts the child broker on the pipeline's address and data
// directory, and waits until it serves.
func (p *Pipeline) startBroker(ctx context.Context) error {
	b, err := Spawn(Command{Name: "broker", Exe: p.Exe, Env: p.ChildEnv(func(c *config.Config) { c.LogLevel = slog.LevelWarn }), Log: p.childLog,
		Args: []string{"broker", "--listen", p.BrokerAddr(), "--data-dir", filepath.Join(p.brokerDir, "data")}})
	if err != nil {
		return err
	}
	if err := b.WaitListening(ctx, p.BrokerAddr(), 20*time.Second); err != nil {
		_ = b.Stop(time.Second)
		return err
	}
	p.mu.Lock()
	p.brokerP = b
	p.mu.Unlock()
	return nil
}

// RestartBroker stops the child broker, waits down, and starts it again on
// the same address and data directory. Clients reconnect by themselves.
func (p *Pipeline) RestartBroker(ctx context.Context, down time.Duration) error {
	p.mu.Lock()
	b := p.brokerP
	p.mu.Unlock()
	if b == nil {
		return fmt.Errorf("restart broker: %w", ErrNoChildBroker)
	}
	_ = b.Stop(10 * time.Second) // it is being replaced, however it ended
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(down):
	}
	if err := p.startBroker(ctx); err != nil {
		return fmt.Errorf("restart broker: %w", err)
	}
	p.observe(BrokerRestarted{At: time.Now(), Down: down})
	return nil
}
