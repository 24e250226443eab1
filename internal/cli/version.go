package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"foodpipe/internal/telemetry"
)

// runVersion prints which foodpipe this binary is: its version and the
// commit it was built from (telemetry.Build), the same labels its
// foodpipe_build_info metric carries.
func runVersion(_ context.Context, env *Env, args []string) error {
	// Not newFlags: the version is told whatever the configuration says,
	// a broken one included.
	fs := flag.NewFlagSet("foodpipe version", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	asJSON := fs.Bool("json", false, "print it as one JSON object")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: foodpipe version takes no arguments", ErrUsage)
	}
	b := telemetry.Build()
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(b)
	}
	modified := ""
	if b.Modified {
		modified = ", modified"
	}
	_, err := fmt.Fprintf(env.Stdout, "foodpipe %s (revision %s%s, %s)\n", b.Version, b.Revision, modified, b.GoVersion)
	return err
}
