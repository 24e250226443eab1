// Package cli is foodpipe's command line: one file per subcommand. It turns
// configuration into the pieces (Kafka clients, the store, the producer and
// consumer), hands them to each other, and prints what it gets back as JSON
// or as package report's text; no business logic lives here.
package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/term"

	"foodpipe/internal/config"
)

// Env is what a command gets from the process: streams, the logger and its
// level (set once the configuration is read), and the environment.
type Env struct {
	Stdout, Stderr io.Writer
	Log            *slog.Logger
	Level          *slog.LevelVar
	// Lookup reads environment variables; os.LookupEnv in the program.
	Lookup func(string) (string, bool)
	// DotEnv is the .env file read when present ("" reads none).
	DotEnv string
	// Terminal reports whether w is a terminal, where a view is redrawn in
	// place; nil asks the operating system about w's file. Tests set it to
	// draw as on a terminal.
	Terminal func(w io.Writer) bool
	// ownProcess is set by Main: the command has the process to itself
	// (see followOnOneProcessor).
	ownProcess bool
}

// terminal reports whether w is a terminal (see Env.Terminal).
func (env *Env) terminal(w io.Writer) bool {
	if env.Terminal != nil {
		return env.Terminal(w)
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// clientLog is the log of the Kafka clients behind a view; drawn says the
// view is redrawn in place on a terminal (status --watch, the demo's live
// view). franz-go's own lines (a warning each time a broker refuses a
// connection) would tear such a view apart, so while the log goes to a
// terminal too they are left out, and the view says in its own words what
// went wrong. A log sent elsewhere (2>status.log) has them as always.
func (env *Env) clientLog(drawn bool) *slog.Logger {
	if drawn && env.terminal(env.Stderr) {
		return slog.New(slog.DiscardHandler)
	}
	return env.Log
}

// ErrUsage marks an error caused by how the command was called.
var ErrUsage = errors.New("usage")

type command struct {
	name  string
	args  string
	short string
	run   func(ctx context.Context, env *Env, args []string) error
}

func commands() []command {
	return []command{
		{"broker", "[--listen 127.0.0.1:9092] [--data-dir DIR]", "run an embedded Kafka-protocol broker", runBroker},
		{"topic", "create|describe", "create the topics, or show partitions, offsets and configs", runTopic},
		{"produce", "[--rate 10] [--count N] [--duration D]", "generate orders and publish them", runProduce},
		{"consume", "[--id NAME] [--batch-size N]", "consume orders into PostgreSQL as a member of the group", runConsume},
		{"analytics", "[run|report|verify] [--id NAME]", "a second group on the same topic: live aggregates, exactly once", runAnalytics},
		{"notify", "[run|inbox] [--id NAME]", "a third group on the same topic: emails each customer over SMTP, at least once", runNotify},
		{"teach", "--semantics at-most-once|at-least-once [--id NAME]", "a member of a teaching group: commit then write, or write then commit", runTeach},
		{"migrate", "up|down|status", "apply, undo or list the schema migrations", runMigrate},
		{"demo", "[--orders 100] [--rate 10] [--consumers 2] [--json]", "run the whole pipeline in one process and summarise it", runDemo},
		{"lab", "[--addr 127.0.0.1:8080] [--consumers 2] [--rate 10]", "run the pipeline and watch it, and break it on purpose, in the browser", runLab},
		{"dlq", "list|replay [--reason R]", "list dead letters, or re-publish chosen ones once after a fix", runDLQ},
		{"soak", "[--duration 1h] [--rate 100] [--json]", "run the pipeline for a long time and check the consumer stays flat", runSoak},
		{"bench", "[--orders 500000] [--rates 10,1000,10000] [--json]", "measure drain speed against raw COPY, latency, memory and scaling", runBench},
		{"exporter", "[--metrics-addr :9308]", "serve the groups' lag as the broker sees it, for Prometheus, also while every consumer is down", runExporter},
		{"status", "[--watch] [--json]", "show partitions, offsets, lag, group members and rows per partition", runStatus},
		{"config", "", "print the configuration in effect, secrets masked", runConfig},
		{"version", "[--json]", "print the version and revision of this binary", runVersion},
		{"health", "[--path /healthz]", "ask a running produce or consume for its health on METRICS_ADDR (container health checks)", runHealth},
	}
}

// Run executes the subcommand named by args[0].
func Run(ctx context.Context, env *Env, args []string) error {
	if env.Lookup == nil {
		env.Lookup = os.LookupEnv
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return fmt.Errorf("%w: no command given", ErrUsage)
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	usage(env.Stderr)
	return fmt.Errorf("%w: unknown command %q", ErrUsage, args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "foodpipe — a Kafka food-order pipeline\n\nUsage: foodpipe COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %-52s %s\n", c.name, c.args, c.short)
	}
	fmt.Fprintln(w, "\nConfiguration comes from environment variables (see .env.example), a .env file, and flags.\nRun 'foodpipe COMMAND -h' for a command's flags.")
}

// loadConfig reads defaults, .env and the environment; flags are applied on
// top by parse.
func loadConfig(env *Env) (config.Config, error) {
	lookup, err := env.lookup()
	if err != nil {
		return config.Config{}, err
	}
	return config.Load(lookup)
}

// lookup reads the environment, then the .env file.
func (env *Env) lookup() (func(string) (string, bool), error) {
	if env.DotEnv == "" {
		return env.Lookup, nil
	}
	return config.WithDotEnv(env.DotEnv, env.Lookup)
}

// flags is a FlagSet over a Config: flags named for a variable override it.
type flags struct {
	*flag.FlagSet
	cfg *config.Config
	env *Env
}

func newFlags(env *Env, name string) (*flags, error) {
	cfg, err := loadConfig(env)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	fs := flag.NewFlagSet("foodpipe "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	f := &flags{FlagSet: fs, cfg: &cfg, env: env}
	return f, nil
}

// varFlag binds a flag to a configuration variable, so the flag goes through
// the variable's own parsing and checks.
type varFlag struct {
	cfg *config.Config
	v   *config.Var
	val string
}

func (v *varFlag) String() string { return v.val }
func (v *varFlag) Set(s string) error {
	v.val = s
	return v.v.Set(v.cfg, s)
}

// bind adds --flag for the variable v (config.KafkaBrokers and so on).
func (f *flags) bind(flagName string, v *config.Var) {
	f.Var(&varFlag{cfg: f.cfg, v: v, val: v.Default}, flagName, v.Help+" ("+v.Name+")")
}

// kafkaFlags binds the connection flags every Kafka command has.
func (f *flags) kafkaFlags() {
	f.bind("brokers", config.KafkaBrokers)
	f.bind("topic", config.KafkaTopic)
	f.bind("log-level", config.LogLevel)
}

// memberID adds --id, a group member's name, by default defaultMemberID's.
func (f *flags) memberID(help string) *string {
	host, _ := os.Hostname()
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	return f.String("id", defaultMemberID(host, os.Getpid(), containerID(string(mountinfo))), help)
}

// defaultMemberID is a member's id when --id is not given: unique among the
// members that may share a group, and the same when the process comes back,
// so that a restarted member takes its static place back at once.
//
// Outside a container that is host-pid. In a container on its own network
// the host name is the container's (Docker's short container id, a pod's
// name) and the pid 1, so host-1 is unique too, and stays across restarts of
// the container. On the host's network (compose's network_mode: host) every
// replica has the host's name and pid 1: there the container's own id, found
// in its mounts, tells them apart (host-<12 hex digits>), and still stays
// across restarts. Where no id is found (a runtime that mounts nothing under
// a containers directory, as Kubernetes' containerd does) it stays host-pid:
// a pod's name is its own, and so is its id; replicas of such a runtime on
// the host's network need --id.
func defaultMemberID(host string, pid int, container string) string {
	if short := container[:min(len(container), 12)]; short != "" && !strings.HasPrefix(host, short) {
		return host + "-" + short
	}
	return fmt.Sprintf("%s-%d", host, pid)
}

// containerMount finds a container's id in the source of a file its runtime
// mounts into it: Docker's and containerd's
// .../containers/<64 hex digits>/hostname (or hosts, resolv.conf) and
// Podman's .../overlay-containers/<id>/userdata/hostname.
var containerMount = regexp.MustCompile(`/(?:containers|overlay-containers)/([0-9a-f]{64})/`)

// containerID returns the id of the container this process runs in, read
// from its /proc/self/mountinfo, or "" outside one.
func containerID(mountinfo string) string {
	for line := range strings.Lines(mountinfo) {
		f := strings.Fields(line)
		// The fourth field is the mount's root within its file system, the
		// fifth where it is mounted.
		if len(f) < 5 || (f[4] != "/etc/hostname" && f[4] != "/etc/hosts" && f[4] != "/etc/resolv.conf") {
			continue
		}
		if m := containerMount.FindStringSubmatch(f[3]); m != nil {
			return m[1]
		}
	}
	return ""
}

func (f *flags) dbFlags() {
	f.bind("database-url", config.DatabaseURL)
}

// subcommand picks the subcommand of a command that needs one (topic,
// migrate, dlq) from args. When args ask for help, name none or one it does
// not know, it prints the command's usage line and each subcommand's flags
// on stderr, as -h prints any other command's, and returns flag.ErrHelp
// (exit code 0) for -h, a usage error otherwise. build makes a
// subcommand's flags as the command does.
func subcommand(env *Env, args []string, usage string, subs []string, build func(sub string) (*flags, error)) (string, error) {
	if len(args) > 0 && slices.Contains(subs, args[0]) {
		return args[0], nil
	}
	fmt.Fprintf(env.Stderr, "Usage: %s\n", usage)
	for _, sub := range subs {
		f, err := build(sub)
		if err != nil {
			return "", err
		}
		fmt.Fprintln(env.Stderr)
		f.Usage()
	}
	switch {
	case len(args) == 0:
		return "", fmt.Errorf("%w: no subcommand given: %s", ErrUsage, usage)
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		return "", flag.ErrHelp
	}
	return "", fmt.Errorf("%w: unknown subcommand %q: %s", ErrUsage, args[0], usage)
}

// parse parses the flags, validates the whole configuration, sets the log
// level and logs the configuration once.
func (f *flags) parse(args []string) (config.Config, error) {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config.Config{}, flag.ErrHelp
		}
		return config.Config{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if f.NArg() > 0 {
		return config.Config{}, fmt.Errorf("%w: unexpected argument %q", ErrUsage, f.Arg(0))
	}
	if err := f.cfg.Validate(); err != nil {
		return config.Config{}, fmt.Errorf("configuration: %w", err)
	}
	if f.env.Level != nil {
		f.env.Level.Set(f.cfg.LogLevel)
	}
	f.env.Log.Debug("configuration", slog.Any("config", *f.cfg))
	return *f.cfg, nil
}

func runConfig(_ context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "config")
	if err != nil {
		return err
	}
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	// The configuration in effect, flags and all, secrets masked.
	for _, v := range slices.SortedFunc(slices.Values(config.Vars), func(a, b *config.Var) int { return cmp.Compare(a.Name, b.Name) }) {
		fmt.Fprintf(env.Stdout, "%s=%s\n", v.Name, v.Masked(v.Value(cfg)))
	}
	return nil
}

// show prints v on standard output: as one JSON object with asJSON, else
// as text drawn by print (one of package report's).
func show[T any](env *Env, asJSON bool, v T, print func(io.Writer, T)) error {
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(v)
	}
	print(env.Stdout, v)
	return nil
}
