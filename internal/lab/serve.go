package lab

// Serving a lab: its address taken first, its log in a file, the pipeline
// started, the page served until the context ends.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"foodpipe/internal/telemetry"
)

// ServeOptions say how to serve a lab. Serve sets Options.Log and
// Options.ChildLog to the log file.
type ServeOptions struct {
	Options
	// Addr is the host:port to serve the page on. Any address but loopback
	// needs the token Serve makes (see Access).
	Addr string
	// LogPath is the file for the lab's log and its children's (the Kafka
	// clients' reconnections, the consumers' warnings), appended to; when
	// "", a new file in the temporary directory. The terminal's business is
	// where to look and why the lab stopped; the page says what happens.
	LogPath string
	// Level is the log's level; nil logs at Config.LogLevel.
	Level *slog.LevelVar
	// Starting is told once the address is taken and the log open, before
	// the pipeline starts (which takes seconds); Ready once the lab runs,
	// with where to find it, just before its page is served. Either may be nil.
	Starting func()
	Ready    func(Where)
}

// Where says where to find a lab that runs.
type Where struct {
	// Broker is the broker's address; Database the database's URL (with
	// its password: mask it to show it) and DatabaseSource how it was found.
	Broker, Database, DatabaseSource string
	// Log is the log file's name.
	Log string
	// URL is the page's address, with the token when one is needed.
	URL string
}

// Serve starts a lab and serves its page until ctx ends, then stops the
// lab and everything it started. A port in use stops it before it starts
// anything.
func Serve(ctx context.Context, o ServeOptions) error {
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("serve the lab on %s: %w", o.Addr, err)
	}
	defer ln.Close()
	logFile, err := openLog(o.LogPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	level := o.Level
	if level == nil {
		level = new(slog.LevelVar)
		level.Set(o.Config.LogLevel)
	}
	o.Log, o.ChildLog = telemetry.NewLogger(logFile, level), logFile
	if o.Starting != nil {
		o.Starting()
	}
	lb, err := Start(ctx, o.Options)
	if err != nil {
		return fmt.Errorf("%w (the log: %s)", err, logFile.Name())
	}
	defer lb.Close()
	access := Access{Addr: ln.Addr().String()}
	if !IsLoopback(access.Addr) {
		access.Token = NewToken()
	}
	if o.Ready != nil {
		dbURL, dbSource := lb.Database()
		o.Ready(Where{Broker: lb.BrokerAddr(), Database: dbURL, DatabaseSource: dbSource, Log: logFile.Name(), URL: access.URL()})
	}

	srv := &http.Server{Handler: lb.Handler(access), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve the lab: %w", err)
	}
	// The streams end when the lab closes; then the server has nothing left.
	lb.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stop serving the lab: %w", err)
	}
	return nil
}

// openLog opens the lab's log: path, appended to, or a new file in the
// temporary directory.
func openLog(path string) (*os.File, error) {
	if path == "" {
		f, err := os.CreateTemp("", "foodpipe-lab-*.log")
		if err != nil {
			return nil, fmt.Errorf("the lab's log: %w", err)
		}
		return f, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("the lab's log: %w", err)
	}
	return f, nil
}
