package cli

import (
	"os"
	"testing"
)

// envRunAsCLI makes the test binary act as the foodpipe binary. Commands
// that start foodpipe child processes through os.Executable (soak, bench)
// start the test binary in tests; with this variable set it runs the CLI.
const envRunAsCLI = "FOODPIPE_TEST_RUN_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(envRunAsCLI) == "1" {
		os.Exit(Main(os.Args[1:], ""))
	}
	os.Exit(m.Run())
}
