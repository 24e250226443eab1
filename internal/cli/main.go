package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"foodpipe/internal/telemetry"
)

// Main is the foodpipe program: it builds the JSON logger, runs the command
// in args until it ends or SIGINT/SIGTERM stops it, prints the error, and
// returns the exit code (2 for a usage error, 1 for any other). dotEnv is
// the .env file to read when present ("" reads none). Test binaries that
// stand in for foodpipe call it too.
func Main(args []string, dotEnv string) int {
	level := new(slog.LevelVar)
	env := &Env{Stdout: os.Stdout, Stderr: os.Stderr, Log: telemetry.NewLogger(os.Stderr, level), Level: level, DotEnv: dotEnv, ownProcess: true}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, env, args)
	stop()
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintln(os.Stderr, "foodpipe:", err)
		return 2
	default:
		fmt.Fprintln(os.Stderr, "foodpipe:", err)
		return 1
	}
}
