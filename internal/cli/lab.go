package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/lab"
	"foodpipe/internal/secret"
	"foodpipe/internal/telemetry"
)

// runLab starts the whole pipeline with its consumers as child processes
// and serves the Kafka lab's page until interrupted.
func runLab(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "lab")
	if err != nil {
		return err
	}
	addr := f.String("addr", "127.0.0.1:8080", "host:port to serve the page on; any address but loopback needs the token printed at start")
	consumers := f.Int("consumers", 2, fmt.Sprintf("consumer processes to start with (1 to %d)", lab.MaxConsumers))
	rate := f.Float64("rate", 10, fmt.Sprintf("orders per second to start with (0 starts paused; at most %d; the page changes it)", lab.MaxRate))
	logPath := f.String("log", "", "file for the lab's log and its children's (the Kafka clients' reconnections, the consumers' warnings); default a new file in the temporary directory, named at start")
	f.bind("brokers", config.KafkaBrokers)
	f.bind("partitions", config.KafkaPartitions)
	userDB, err := f.ownPipelineFlags()
	if err != nil {
		return err
	}
	lookup, err := env.lookup()
	if err != nil {
		return err
	}
	_, brokersFromEnv := lookup(config.KafkaBrokers.Name)
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	userBrokers := brokersFromEnv
	f.Visit(func(fl *flag.Flag) { userBrokers = userBrokers || fl.Name == "brokers" })
	if *consumers < 1 || *consumers > lab.MaxConsumers {
		return fmt.Errorf("%w: --consumers must be from 1 to %d", ErrUsage, lab.MaxConsumers)
	}
	if *rate < 0 || *rate > lab.MaxRate {
		return fmt.Errorf("%w: --rate must be from 0 to %d orders per second", ErrUsage, lab.MaxRate)
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return fmt.Errorf("%w: --addr must be host:port, such as 127.0.0.1:8080: %w", ErrUsage, err)
	}
	// Listen first: a port in use stops the lab before it starts anything.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve the lab on %s: %w", *addr, err)
	}
	defer ln.Close()

	mode := harness.ChildBroker
	if userBrokers {
		mode = harness.ExternalBroker
	}
	// The lab's terminal says where to look and why it stopped; the page
	// says what happens. What the clients say as they go (a broker the user
	// restarts makes each of them say it reconnects) goes to a file.
	logFile, err := openLabLog(*logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	level := env.Level
	if level == nil {
		level = new(slog.LevelVar)
		level.Set(cfg.LogLevel)
	}
	fmt.Fprintln(env.Stdout, "starting the broker, the database and the consumers...")
	lb, err := lab.Start(ctx, lab.Options{Config: cfg, Broker: mode, UserDatabase: userDB(),
		Log: telemetry.NewLogger(logFile, level), ChildLog: logFile, Consumers: *consumers, Rate: *rate})
	if err != nil {
		return fmt.Errorf("%w (the log: %s)", err, logFile.Name())
	}
	defer lb.Close()
	access := lab.Access{Addr: ln.Addr().String()}
	if !lab.IsLoopback(access.Addr) {
		access.Token = lab.NewToken()
	}
	dbURL, dbSource := lb.Database()
	kind := "a child process that the page can restart"
	if userBrokers {
		kind = "yours"
	}
	fmt.Fprintf(env.Stdout, "broker    %s (%s)\n", lb.BrokerAddr(), kind)
	fmt.Fprintf(env.Stdout, "database  %s (%s)\n", secret.RedactURL(dbURL), dbSource)
	fmt.Fprintf(env.Stdout, "log       %s\n", logFile.Name())
	fmt.Fprintf(env.Stdout, "\nthe Kafka lab: %s\n(Ctrl-C stops it and everything it started)\n", labURL(access))

	srv := &http.Server{Handler: lb.Handler(access), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve the lab: %w", err)
	}
	// The streams end when the lab closes; then the server has nothing left.
	lb.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stop serving the lab: %w", err)
	}
	return nil
}

// openLabLog opens the lab's log: path, appended to, or a new file in the
// temporary directory.
func openLabLog(path string) (*os.File, error) {
	if path == "" {
		f, err := os.CreateTemp("", "foodpipe-lab-*.log")
		if err != nil {
			return nil, fmt.Errorf("the lab's log: %w", err)
		}
		return f, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("the lab's log: %w", err)
	}
	return f, nil
}

// labURL is the address to open, with the token when one is needed. An
// address on every interface is shown with this machine's name.
func labURL(a lab.Access) string {
	host, port, _ := net.SplitHostPort(a.Addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	u := "http://" + net.JoinHostPort(host, port) + "/"
	if a.Token != "" {
		u += "?token=" + a.Token
	}
	return u
}
