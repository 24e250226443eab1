// Package fault holds the points where tests make a process crash or freeze
// at an exact moment, to prove what survives it. Every point is off unless
// the process was started with FOODPIPE_FAULT naming it (comma-separated);
// a point that is off costs one boolean test.
package fault

import (
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Env is the variable that names the armed points.
const Env = "FOODPIPE_FAULT"

var (
	armed   = strings.Split(os.Getenv(Env), ",")
	enabled = os.Getenv(Env) != ""
	frozen  sync.Map // name -> *sync.Once
)

// Crash kills the process with SIGKILL if name is armed, as a power cut or
// the OOM killer would: no deferred function, flush or goodbye to the broker.
//
// Armed as Hold(name) instead, the process stops itself there (SIGSTOP, as
// Freeze does) and waits for whoever started it to kill it: several
// processes held at their crash points are then killed at one instant,
// each between the same two steps it would have crashed between.
func Crash(name string) {
	if !enabled {
		return
	}
	if slices.Contains(armed, Hold(name)) {
		stop(Hold(name), "holding the process for its kill")
	}
	if !slices.Contains(armed, name) {
		return
	}
	_, _ = os.Stderr.WriteString("fault point " + name + ": killing the process\n")
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL) // the process is gone either way
	select {}
}

// Hold is how FOODPIPE_FAULT arms the crash point name to stop the process
// there, for its starter to kill, instead of killing it.
func Hold(name string) string { return "hold:" + name }

// Armed reports whether any of names is armed (to crash, hold or freeze):
// for code that would otherwise take a path on which the point is never
// reached.
func Armed(names ...string) bool {
	if !enabled {
		return false
	}
	for _, name := range names {
		if slices.Contains(armed, name) || slices.Contains(armed, Hold(name)) {
			return true
		}
	}
	return false
}

// Freeze stops the whole process with SIGSTOP the first time an armed name
// is reached, as a paused VM, a swap storm or a debugger would: every
// goroutine stops, heartbeats included, and open connections stay open.
// It goes on when someone sends SIGCONT.
func Freeze(name string) {
	if !enabled || !slices.Contains(armed, name) {
		return
	}
	stop(name, "freezing the process")
}

// stop stops the whole process (SIGSTOP) the first time name is reached.
func stop(name, what string) {
	once, _ := frozen.LoadOrStore(name, new(sync.Once))
	once.(*sync.Once).Do(func() {
		// A stop signal takes effect a moment after kill returns, and
		// this goroutine could run on past the point meanwhile (send its
		// COMMIT, say). It waits here for the SIGCONT that ends the stop.
		cont := make(chan os.Signal, 1)
		signal.Notify(cont, syscall.SIGCONT)
		defer signal.Stop(cont)
		_, _ = os.Stderr.WriteString("fault point " + name + ": " + what + "\n")
		_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP) // a test resumes it
		<-cont
	})
}
