package harness

// A foodpipe child process: a consumer whose kill is a real SIGKILL, a
// broker that can be restarted, a producer measured apart from the rest.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"foodpipe/internal/config"
)

// Process is a running `foodpipe` subcommand.
type Process struct {
	// Name says which part of the pipeline it is ("broker", "consumer-2").
	Name string
	// MetricsAddr is where the child serves /metrics, /healthz and /readyz
	// (its METRICS_ADDR), "" when it serves none.
	MetricsAddr string
	cmd         *exec.Cmd
	log         *LogBuffer
	done        chan struct{}
	err         error
	// onExit is told once, when the process has ended.
	onExit func(*Process)
}

// Command says how to start a process.
type Command struct {
	// Name says which part of the pipeline it is, in events and reports.
	Name string
	Exe  string
	Args []string
	// Env is the whole environment (see Pipeline.ChildEnv).
	Env []string
	// Dir is the working directory; "" is this process's. A foodpipe
	// child reads the .env file there.
	Dir string
	// Log, when not nil, is given a copy of the output as well.
	Log io.Writer
	// onExit is set before the process starts, so that the goroutine
	// waiting for its end reads it after it was written.
	onExit func(*Process)
}

// Spawn starts c. Its output (standard output and error) is kept, the last
// MiB of it, for reports and assertions.
func Spawn(c Command) (*Process, error) {
	p := &Process{Name: c.Name, cmd: exec.Command(c.Exe, c.Args...), log: &LogBuffer{Limit: 1 << 20}, done: make(chan struct{}), onExit: c.onExit}
	p.cmd.Env, p.cmd.Dir = c.Env, c.Dir
	for _, kv := range c.Env {
		if v, ok := strings.CutPrefix(kv, config.MetricsAddr.Name+"="); ok {
			p.MetricsAddr = v // the last one wins, as it does for the child
		}
	}
	var out io.Writer = p.log
	if c.Log != nil {
		out = io.MultiWriter(p.log, c.Log)
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
		if p.onExit != nil {
			p.onExit(p)
		}
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the end and returns how it ended (nil for exit code 0).
func (p *Process) Wait() error { <-p.done; return p.err }

// Ended reports whether the process has ended.
func (p *Process) Ended() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended (nil for exit code 0, or while it runs).
func (p *Process) Err() error {
	if !p.Ended() {
		return nil
	}
	return p.err
}

// Signal sends sig; a process that already ended is not an error.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Ended() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !strings.Contains(err.Error(), "process already finished") {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	return nil
}

// Stop asks the process to stop (SIGTERM, as an orchestrator would), waits
// up to grace, then kills it. A stopped (SIGSTOP) process is continued
// first, or it could not hear the request.
func (p *Process) Stop(grace time.Duration) error {
	_ = p.Signal(syscall.SIGCONT) // it ends either way
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.Signal(syscall.SIGKILL)
		<-p.done
	}
	return p.err
}

// CPU is the user and system time the process used; known once it ended.
func (p *Process) CPU() time.Duration {
	if ps := p.cmd.ProcessState; ps != nil {
		return ps.UserTime() + ps.SystemTime()
	}
	return 0
}

// CPUSoFar is the user and system time the process has used so far, read
// from /proc while it runs (in the kernel's ticks of 10 ms); 0 when it
// cannot be read.
func (p *Process) CPUSoFar() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: the fields that
	// follow it are counted from its closing parenthesis, utime and stime
	// being the 14th and 15th of the line.
	i := bytes.LastIndex(b, []byte(") "))
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	const tick = 10 * time.Millisecond // USER_HZ, 100 on Linux
	return time.Duration(utime+stime) * tick
}

// ContextSwitches is how many times the process's threads have been switched
// off a CPU so far, voluntarily (they slept: a timer, a futex, a socket) or
// not: its wake-ups, the cost an idle process pays for every timer it keeps.
// The kernel counts them per thread, so every thread's are summed; 0 once it
// has ended.
func (p *Process) ContextSwitches() int64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.Pid()))
	if err != nil {
		return 0
	}
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", p.Pid(), t.Name()))
		if err != nil {
			continue // the thread ended meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			for _, field := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if rest, ok := strings.CutPrefix(line, field); ok {
					v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
					n += v
				}
			}
		}
	}
	return n
}

// RSSMiB is the process's resident set now.
func (p *Process) RSSMiB() float64 { return ProcStatusMiB(p.Pid(), "VmRSS") }

// PeakRSSMiB is the process's peak resident set so far, read while it runs:
// the kernel's maxrss of a child started by fork and exec also counts the
// parent's pages from before the exec.
func (p *Process) PeakRSSMiB() float64 { return ProcStatusMiB(p.Pid(), "VmHWM") }

// Log is the process's output kept so far.
func (p *Process) Log() string { return p.log.String() }

// ExitCode is the exit code once the process ended, -1 while it runs or
// when a signal ended it.
func (p *Process) ExitCode() int {
	if !p.Ended() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// LogTail is the end of the process's output, at most n bytes.
func (p *Process) LogTail(n int) string {
	s := p.log.String()
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// ProcStatusMiB reads a memory field (VmRSS, VmHWM, ...) of a process from
// /proc, in MiB; 0 when it cannot.
func ProcStatusMiB(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// WaitListening waits until addr accepts connections, the process ends, or
// the limit passes.
func (p *Process) WaitListening(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close() // it accepted: that was the question
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %w\n%s", p.Name, p.err, p.LogTail(2000))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %v", p.Name, addr, limit)
		}
	}
}

// FreeLoopback returns a 127.0.0.1 address nothing listens on yet.
func FreeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// LogBuffer keeps what a process writes, safe for concurrent writers. With
// a Limit, once it holds more than Limit bytes it keeps the last 64 KiB and
// goes on.
type LogBuffer struct {
	Limit int
	mu    sync.Mutex
	buf   bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Limit > 0 && l.buf.Len() > l.Limit {
		rest := l.buf.Bytes()[l.buf.Len()-min(l.buf.Len(), 64<<10):]
		l.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return l.buf.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Reset empties the buffer.
func (l *LogBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
}
