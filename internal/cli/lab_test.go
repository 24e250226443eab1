package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"foodpipe/internal/lab"
	"foodpipe/internal/store/dbtest"
)

// Bad flags stop the lab before it starts anything, saying which and why.
func TestLabRefusesBadFlags(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--consumers", "0"}, "--consumers must be from 1 to 8"},
		{[]string{"--consumers", "9"}, "--consumers must be from 1 to 8"},
		{[]string{"--rate", "-1"}, "--rate must be from 0 to 2000"},
		{[]string{"--addr", "8080"}, "--addr must be host:port"},
		{[]string{"--addr", busy.Addr().String()}, "serve the lab on " + busy.Addr().String()},
	} {
		err := newRun(t).do(context.Background(), append([]string{"lab"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("lab %v = %v, want an error saying %q", c.args, err, c.want)
		}
		if c.want != "serve the lab on "+busy.Addr().String() && !errors.Is(err, ErrUsage) {
			t.Errorf("lab %v: %v is not a usage error", c.args, err)
		}
	}
}

// The lab starts, prints where to open it and where its log is, serves its
// page there, and stops everything when interrupted. A broker restarted
// from the page makes every Kafka client say it reconnects: that goes to
// the log, and the terminal shows none of it.
func TestLabServesItsPageUntilStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	t.Setenv(envRunAsCLI, "1") // its consumers and broker are this test binary
	r := newRun(t, "DATABASE_URL", dbtest.New(t), "CONSUMER_SESSION_TIMEOUT", "6s")
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logPath := filepath.Join(t.TempDir(), "lab.log")
	go func() {
		done <- r.do(ctx, "lab", "--addr", "127.0.0.1:0", "--consumers", "1", "--rate", "5", "--log", logPath)
	}()
	re := regexp.MustCompile(`the Kafka lab: (http://127\.0\.0\.1:\d+/)`)
	deadline := time.Now().Add(60 * time.Second)
	var url string
	for url == "" {
		if m := re.FindStringSubmatch(r.stdout.String()); m != nil {
			url = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("the lab ended at start: %v\n%s", err, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no address printed:\n%s\n%s", r.stdout, r.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(r.stdout.String(), "a child process that the page can restart") {
		t.Errorf("the broker's kind is not printed:\n%s", r.stdout)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Kafka lab") {
		t.Errorf("GET %s = %d:\n%.300s", url, resp.StatusCode, page)
	}
	if !strings.Contains(r.stdout.String(), "log       "+logPath) {
		t.Errorf("the log's path is not printed:\n%s", r.stdout)
	}
	restartBroker(t, url)
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the lab stopped with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the lab did not stop within 60 s of the interrupt")
	}
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("the page is still served after the lab stopped")
	}
	for name, out := range map[string]string{"standard output": r.stdout.String(), "standard error": r.stderr.String()} {
		if strings.Contains(out, "{") {
			t.Errorf("the lab's %s has log lines:\n%s", name, out)
		}
	}
	if b, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(b), `"component":"kgo"`) {
		t.Errorf("the log %s has no Kafka client's line after a broker restart (%v):\n%.2000s", logPath, err, b)
	}
}

// restartBroker asks the lab at url to restart its broker, as the page
// does, and waits until the page says it is back.
func restartBroker(t *testing.T, url string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"api/broker/restart", strings.NewReader(`{"seconds":1}`))
	req.Header.Set("Origin", strings.TrimSuffix(url, "/"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("restart the broker = %d", resp.StatusCode)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var s lab.Snapshot
		if resp, err := http.Get(url + "state"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
		}
		if slices.ContainsFunc(s.Timeline, func(e lab.Event) bool { return strings.Contains(e.Text, "broker is back") }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the broker was not back within 60 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
