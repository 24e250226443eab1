// Package fault holds crash points for the tests that prove what survives a
// crash at an exact moment. Every point is off unless the process was started
// with FOODPIPE_FAULT naming it; then reaching the point kills the process
// with SIGKILL, as a power cut or the OOM killer would, with no deferred
// function, flush or goodbye to the broker.
package fault

import (
	"os"
	"slices"
	"strings"
	"syscall"
)

// Env is the variable that names the points to crash at, comma-separated.
const Env = "FOODPIPE_FAULT"

var armed = strings.Split(os.Getenv(Env), ",")

// Point kills the process if name is armed, and does nothing otherwise.
func Point(name string) {
	if os.Getenv(Env) == "" || !slices.Contains(armed, name) {
		return
	}
	os.Stderr.WriteString("fault point " + name + ": killing the process\n")
	syscall.Kill(os.Getpid(), syscall.SIGKILL) //nolint:errcheck // the process is gone either way
	select {}
}
