package localpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// binaries are what a temporary cluster needs, all from one installation.
var binaries = []string{"initdb", "pg_ctl", "postgres"}

// serverUsers are tried in order for the user a temporary cluster runs as
// when we are root; a variable so that tests can name one that is missing.
var serverUsers = []string{"postgres", "nobody"}

// searchDirs lists where FindBinaries looks after PATH and pg_config; a
// variable so that tests can point it at an empty directory.
var searchDirs = func() []string {
	// Debian/Ubuntu install each major version side by side; RHEL's PGDG
	// packages do the same under /usr/pgsql-N.
	var dirs []string
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"} {
		found, _ := filepath.Glob(pattern)
		dirs = append(dirs, newestFirst(found)...)
	}
	return append(dirs, "/usr/local/pgsql/bin")
}

// newestFirst sorts versioned install directories (…/15/bin, …/9.6/bin,
// …/pgsql-16/bin) by version, newest first.
func newestFirst(dirs []string) []string {
	version := func(dir string) []int {
		name := filepath.Base(filepath.Dir(dir))
		name = strings.TrimLeftFunc(name, func(r rune) bool { return r < '0' || r > '9' })
		var v []int
		for _, part := range strings.Split(name, ".") {
			n, err := strconv.Atoi(part)
			if err != nil {
				break
			}
			v = append(v, n)
		}
		return v
	}
	slices.SortStableFunc(dirs, func(a, b string) int { return slices.Compare(version(b), version(a)) })
	return dirs
}

// FindBinaries returns a directory holding initdb, pg_ctl and postgres. It
// looks where the binaries are on PATH (the link's own directory and, when
// it is a symbolic link, the real one), then in `pg_config --bindir`, then
// in /usr/lib/postgresql/*/bin and /usr/pgsql-*/bin, newest version first,
// then in /usr/local/pgsql/bin. Distributions keep the server binaries off
// PATH, which is why the search goes further than exec.LookPath.
func FindBinaries() (string, error) {
	var dirs []string
	for _, name := range binaries {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if target, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(target))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	more := searchDirs()
	dirs = append(dirs, more...)
	for _, d := range dirs {
		if d != "" && slices.IndexFunc(binaries, func(name string) bool { return !isExec(filepath.Join(d, name)) }) < 0 {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w in PATH, pg_config --bindir, %s", ErrNoBinaries, strings.Join(more, ", "))
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// StartTemp initialises a throwaway cluster in a new temporary directory
// and starts it on a free loopback port, with its unix socket in that
// directory and durability off (fsync, full-page writes, synchronous
// commit): the data is gone after Close anyway, and a demo should be quick.
// It returns once the server accepts connections, waiting at most 30 s.
//
// PostgreSQL refuses to run as root, so under root initdb and postgres run
// as the postgres user, or nobody when there is none, and the directory is
// handed to that user.
func StartTemp(ctx context.Context, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "foodpipe-pg-")
	if err != nil {
		return nil, fmt.Errorf("temporary cluster: %w", err)
	}
	c := &cluster{bin: bin, dir: dir, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "postgres.log")}
	fail := func(err error) (*DB, error) {
		_ = os.RemoveAll(dir) // best effort: the error that matters is err
		return nil, fmt.Errorf("temporary cluster: %w", err)
	}
	if c.asUser, err = serverUser(dir); err != nil {
		return fail(err)
	}
	// --locale=C: initdb fails on a LANG whose locale is not generated,
	// common in containers, and the demo needs no collation.
	if err := c.run(ctx, "initdb", "-D", c.data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		return fail(err)
	}
	if err := c.configure(); err != nil {
		return fail(err)
	}
	port, err := c.start(ctx)
	if err != nil {
		return fail(err)
	}
	db := &DB{
		URL:    pgURL(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "postgres", "postgres"),
		Source: FromTemp,
		dir:    dir,
		stop:   c.close,
	}
	if err := ping(ctx, db.URL); err != nil {
		_ = db.Close() // best effort: the error that matters is err
		return nil, fmt.Errorf("temporary cluster started but does not answer: %w", err)
	}
	log.Info("temporary PostgreSQL cluster started", slog.String("dir", dir), slog.Int("port", port),
		slog.String("bin", bin))
	return db, nil
}

// cluster is a temporary PostgreSQL cluster on disk.
type cluster struct {
	bin, dir, data, log string
	asUser              func(*exec.Cmd) // runs a command as the server's user
}

// run runs one of the PostgreSQL binaries as the server's user and puts its
// output into the error when it fails.
func (c *cluster) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	c.asUser(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// configure appends the settings to postgresql.conf rather than passing
// them on pg_ctl's -o, which goes through a shell and would break on a
// temporary directory with a space or a quote in its name.
func (c *cluster) configure() error {
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "\n# foodpipe temporary cluster\n"+
		"listen_addresses = '127.0.0.1'\n"+
		"unix_socket_directories = '%s'\n"+
		"fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n",
		strings.ReplaceAll(c.dir, "'", "''"))
	return errors.Join(err, f.Close())
}

// start starts the server on a free port and returns the port. The port
// is free when picked but may be taken before postgres binds it, so a
// failed bind is retried on another port.
func (c *cluster) start(ctx context.Context) (int, error) {
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		_ = os.Remove(c.log) // a fresh log for this attempt; there may be none
		err = c.run(ctx, "pg_ctl", "-D", c.data, "-l", c.log, "-o", "-p "+strconv.Itoa(port), "-w", "-t", "30", "start")
		if err == nil {
			return port, nil
		}
		logged, _ := os.ReadFile(c.log)
		// pg_ctl may give up waiting (or be cancelled) while the server
		// goes on starting; make sure none is left behind.
		_ = c.stop("immediate") // best effort: a server that never started has nothing to stop
		if attempt < 3 && ctx.Err() == nil && strings.Contains(string(logged), "could not bind") {
			continue
		}
		return 0, fmt.Errorf("%w\n%s", err, strings.TrimSpace(string(logged)))
	}
}

// stop stops the server. It uses a context of its own because it must work
// after the caller's was cancelled.
func (c *cluster) stop(mode string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	return c.run(ctx, "pg_ctl", "-D", c.data, "-m", mode, "-w", "-t", "30", "stop")
}

// close stops the server, escalating to an immediate shutdown when a fast
// one fails, and removes the directory.
func (c *cluster) close() error {
	err := c.stop("fast")
	if err != nil && c.stop("immediate") == nil {
		err = nil
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
