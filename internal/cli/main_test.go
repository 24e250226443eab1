package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"foodpipe/internal/telemetry"
)

// envRunAsCLI makes the test binary act as the foodpipe binary. Commands
// that start foodpipe child processes through os.Executable (soak, bench)
// start the test binary in tests; with this variable set it runs the CLI.
const envRunAsCLI = "FOODPIPE_TEST_RUN_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(envRunAsCLI) == "1" {
		level := new(slog.LevelVar)
		env := &Env{Stdout: os.Stdout, Stderr: os.Stderr, Log: telemetry.NewLogger(os.Stderr, level), Level: level}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := Run(ctx, env, os.Args[1:])
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "foodpipe:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
