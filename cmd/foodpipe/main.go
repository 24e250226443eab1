// Command foodpipe is a Kafka food-order pipeline: an order producer, a
// consumer that stores orders in PostgreSQL, an embedded broker and a
// one-command demo. Run it without arguments for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"foodpipe/internal/cli"
	"foodpipe/internal/telemetry"
)

func main() {
	level := new(slog.LevelVar)
	env := &cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Log: telemetry.NewLogger(os.Stderr, level), Level: level, DotEnv: ".env"}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, env, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "foodpipe:", err)
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if errors.Is(err, cli.ErrUsage) {
		return 2
	}
	return 1
}
