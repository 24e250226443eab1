package cli

import (
	"context"
	"flag"
	"fmt"
	"net"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/lab"
	"foodpipe/internal/secret"
)

// runLab starts the whole pipeline with its consumers as child processes
// and serves the Kafka lab's page until interrupted (lab.Serve).
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
	f.bind("group-protocol", config.ConsumerGroupProtocol)
	userDB, err := f.ownPipelineFlags()
	if err != nil {
		return err
	}
	lookup, err := env.lookup()
	if err != nil {
		return err
	}
	_, brokersFromEnv := lookup(config.KafkaBrokers.Name)
	// The notifier's mail server: the user's when SMTP_URL names one, as
	// demo --notify does; else a Mailpit the lab starts with the notifier.
	_, userSMTP := lookup(config.SMTPURL.Name)
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
	mode := harness.ChildBroker
	kind := "a child process that the page can restart"
	if userBrokers {
		mode, kind = harness.ExternalBroker, "yours"
	}
	return lab.Serve(ctx, lab.ServeOptions{Addr: *addr, LogPath: *logPath, Level: env.Level,
		Options: lab.Options{Config: cfg, Broker: mode, UserDatabase: userDB(), Consumers: *consumers, Rate: *rate,
			UserMailServer: userSMTP},
		Starting: func() { fmt.Fprintln(env.Stdout, "starting the broker, the database and the consumers...") },
		Ready: func(w lab.Where) {
			fmt.Fprintf(env.Stdout, "broker    %s (%s)\n", w.Broker, kind)
			fmt.Fprintf(env.Stdout, "database  %s (%s)\n", secret.RedactURL(w.Database), w.DatabaseSource)
			fmt.Fprintf(env.Stdout, "log       %s\n", w.Log)
			fmt.Fprintf(env.Stdout, "\nthe Kafka lab: %s\n(Ctrl-C stops it and everything it started)\n", w.URL)
		}})
}
