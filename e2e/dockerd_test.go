package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"foodpipe/internal/harness"
)

// EnvNoDocker names the variable that skips the image test: set to 1 on a
// machine that cannot run a Docker daemon. Unset, a missing Docker fails the
// test, since a skip reads as a pass and would hide that the image was never
// built.
const EnvNoDocker = "FOODPIPE_TEST_NO_DOCKER"

// EnvDockerCLI names the variable that picks the docker client; by default
// the first one found that can build with BuildKit (see buildKitCLI).
const EnvDockerCLI = "FOODPIPE_TEST_DOCKER_CLI"

// dockerd is a Docker daemon of the test's own, isolated from any other on the
// machine: its own socket, data root, exec root, pidfile and empty config
// file, no bridge, no iptables rules and no IP forwarding. Every container
// runs with --network host, so all traffic stays on 127.0.0.1.
type dockerd struct {
	cli  string // the docker client
	host string // DOCKER_HOST for the client: unix://<dir>/docker.sock
	dir  string // everything of the daemon's lives under it
	cmd  *exec.Cmd
	out  *harness.LogBuffer
	done chan struct{}
}

// requireDocker returns the dockerd binary and a docker client that builds
// with BuildKit. Where either is missing, or the test is not root (dockerd
// needs it), the test fails with what to install, or skips when EnvNoDocker
// is 1.
func requireDocker(t *testing.T) (daemon, cli string) {
	t.Helper()
	if os.Getenv(EnvNoDocker) == "1" {
		t.Skipf("%s=1: the image is not built or run", EnvNoDocker)
	}
	missing := func(what string) {
		t.Helper()
		t.Fatalf("the image test needs %s; scripts/test-deps installs Debian's docker.io and debootstrap "+
			"(as root), or set %s=1 to skip this test where no Docker daemon can run", what, EnvNoDocker)
	}
	if os.Geteuid() != 0 {
		missing("root, to start its own dockerd")
	}
	daemon, err := exec.LookPath("dockerd")
	if err != nil {
		missing("dockerd (not on PATH)")
	}
	if cli, err = buildKitCLI(); err != nil {
		missing(err.Error())
	}
	return daemon, cli
}

// cliVersion finds the major version in `docker --version`'s "Docker version
// 20.10.24+dfsg1, build 297e128".
var cliVersion = regexp.MustCompile(`version (\d+)\.`)

// buildKitCLI finds a docker client that builds with BuildKit, which the
// Dockerfile's cache mounts need: a client before 23.0 has BuildKit built in
// (DOCKER_BUILDKIT=1), a later one only through the buildx plugin. The
// docker on PATH may be a newer client without buildx, while Debian's
// docker.io puts its 20.10 client in /usr/bin.
func buildKitCLI() (string, error) {
	if cli := os.Getenv(EnvDockerCLI); cli != "" {
		return cli, nil
	}
	var candidates []string
	if p, err := exec.LookPath("docker"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/docker")
	var tried []string
	for _, cli := range slices.Compact(candidates) {
		out, err := exec.Command(cli, "--version").Output()
		if err != nil {
			continue
		}
		m := cliVersion.FindSubmatch(out)
		if m == nil {
			continue
		}
		major, _ := strconv.Atoi(string(m[1]))
		if major < 23 || exec.Command(cli, "buildx", "version").Run() == nil {
			return cli, nil
		}
		tried = append(tried, fmt.Sprintf("%s (%s, no buildx)", cli, strings.TrimSpace(string(out))))
	}
	return "", fmt.Errorf("a docker client that builds with BuildKit (tried %v; set %s to choose one)", tried, EnvDockerCLI)
}

// startDockerd starts a daemon of the test's own and waits until it answers.
// When the test ends, even on failure, the daemon is stopped (its containers
// with it), whatever it left mounted under its directory is unmounted, and
// the directory is removed.
func startDockerd(t *testing.T, daemon, cli string) *dockerd {
	t.Helper()
	reapOrphans(t, dockerdDirPrefix)
	// Not t.TempDir: its long name would push the daemon's unix sockets past
	// the 108-byte limit, and its removal would run before the unmounting.
	dir, err := os.MkdirTemp("", dockerdDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	markOwner(t, dir)
	config := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(config, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &dockerd{cli: cli, host: "unix://" + filepath.Join(dir, "docker.sock"), dir: dir, out: &harness.LogBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(daemon,
		"--config-file", config, // not /etc/docker/daemon.json
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"-H", d.host,
		"--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false",
		"--log-level=warn",
	)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	// A process group of its own: a Ctrl-C at the terminal reaches the test
	// alone. The test's cleanup stops the daemon in order; if the test dies
	// first, the next run's reapOrphans does.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start dockerd: %v", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.stop(t) })

	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := d.docker(context.Background(), "version", "--format", "{{.Server.Version}}")
		if err == nil {
			break
		}
		select {
		case <-d.done:
			t.Fatalf("dockerd exited at start:\n%s", tail(d.out.String(), 4096))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not answer within 60 s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return d
}

// dockerdDirPrefix begins the name of each test daemon's directory in the
// temporary directory.
const dockerdDirPrefix = "foodpipe-dockerd-"

// reapOrphans cleans up the directories named prefix* that earlier test
// processes left in the temporary directory, stopping the daemon that runs
// in one. A test killed by go test's timeout or by an interrupt runs no
// cleanup: its daemon, in a process group of its own, outlives it, and so do
// the mounts debootstrap or the daemon made. A directory whose owner (the
// test process that made it) still runs belongs to a test running now and is
// left alone.
func reapOrphans(t *testing.T, prefix string) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, dir := range dirs {
		owner, err := readPid(filepath.Join(dir, "owner"))
		if err != nil || syscall.Kill(owner, 0) == nil {
			continue // not made by this test, or its test still runs
		}
		if pid, err := readPid(filepath.Join(dir, "docker.pid")); err == nil {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.Contains(string(cmdline), dir) {
				t.Logf("stopping dockerd %d, left running by an earlier test in %s", pid, dir)
				_ = syscall.Kill(pid, syscall.SIGTERM)
				for i := 0; i < 600 && syscall.Kill(pid, 0) == nil; i++ {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
		left, err := mountsUnder(dir)
		if err == nil {
			err = unmountAll(left)
		}
		if err != nil {
			t.Logf("%s, left by an earlier test, stays: %v", dir, err)
			continue
		}
		os.RemoveAll(dir)
	}
}

// markOwner records in dir that this test process made it, for reapOrphans.
func markOwner(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readPid(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid < 2 {
		return 0, fmt.Errorf("pid file %s: %q", file, b)
	}
	return pid, nil
}

// stop ends the daemon, which stops its containers first, and cleans up.
func (d *dockerd) stop(t *testing.T) {
	clean := true
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		clean = false
		t.Errorf("dockerd did not stop within 60 s of SIGTERM; killing it and its containerd")
		// The containerd the daemon started records its pid here; it runs in a
		// session of its own, so killing the daemon's group would miss it.
		if pid, err := readPid(filepath.Join(d.dir, "exec", "containerd", "containerd.pid")); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
	if t.Failed() {
		t.Logf("--- dockerd output (last 8 KB):\n%s", tail(d.out.String(), 8192))
	}
	left, err := mountsUnder(d.dir)
	if err != nil {
		t.Errorf("dockerd cleanup: %v", err)
		return
	}
	// dockerd 20.10 leaves one mount behind on a clean stop: the bind mount of
	// the host's network namespace that its host-network containers share.
	// Anything else left, an image layer's or a container's, is a leak.
	netns := filepath.Join(d.dir, "exec", "netns") + "/"
	if leaked := slices.DeleteFunc(slices.Clone(left), func(m string) bool { return strings.HasPrefix(m, netns) }); len(leaked) > 0 && clean {
		t.Errorf("dockerd stopped but left %d mounts under %s: %v", len(leaked), d.dir, leaked)
	}
	if err := unmountAll(left); err != nil {
		t.Errorf("dockerd cleanup: %v; %s is left in place", err, d.dir)
		return
	}
	if still, err := mountsUnder(d.dir); err != nil || len(still) > 0 {
		t.Errorf("dockerd cleanup: still mounted under %s: %v %v; it is left in place", d.dir, still, err)
		return
	}
	if err := os.RemoveAll(d.dir); err != nil {
		t.Errorf("dockerd cleanup: %v", err)
	}
}

// docker runs the client against this daemon and returns its trimmed output;
// the error carries the output, which says what went wrong.
func (d *dockerd) docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.cli, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 4096))
	}
	return strings.TrimSpace(string(out)), nil
}

// must runs the client within two minutes and fails the test on an error.
func (d *dockerd) must(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := d.docker(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mountsUnder lists the mount points at or below dir, deepest first, so that
// they can be unmounted in that order.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	defer f.Close()
	var found []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		// /proc/mounts escapes space, tab, newline and backslash in octal.
		target := unescapeOctal(fields[1])
		if target == dir || strings.HasPrefix(target, dir+"/") {
			found = append(found, target)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	slices.SortFunc(found, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(found), nil
}

// unmountAll detaches each mount point; a busy one goes once its last user
// does.
func unmountAll(targets []string) error {
	var errs []error
	for _, target := range targets {
		if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", target, err))
		}
	}
	return errors.Join(errs...)
}

func unescapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
