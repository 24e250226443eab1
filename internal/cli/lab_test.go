package cli

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
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

// The lab starts, prints where to open it, serves its page there, and
// stops everything when interrupted.
func TestLabServesItsPageUntilStopped(t *testing.T) {
	t.Setenv(envRunAsCLI, "1") // its consumers and broker are this test binary
	r := newRun(t, "DATABASE_URL", dbtest.New(t), "CONSUMER_SESSION_TIMEOUT", "6s")
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.do(ctx, "lab", "--addr", "127.0.0.1:0", "--consumers", "1", "--rate", "5") }()
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
}

// Off loopback, the address printed carries the token.
func TestLabURLCarriesTheTokenOffLoopback(t *testing.T) {
	if u := labURL(labAccess("127.0.0.1:8080", "")); u != "http://127.0.0.1:8080/" {
		t.Errorf("loopback URL %q", u)
	}
	if u := labURL(labAccess("192.0.2.7:8080", "abc")); u != "http://192.0.2.7:8080/?token=abc" {
		t.Errorf("URL with a token %q", u)
	}
	if u := labURL(labAccess("0.0.0.0:8080", "abc")); strings.Contains(u, "0.0.0.0") || !strings.HasSuffix(u, ":8080/?token=abc") {
		t.Errorf("an address on every interface is shown as %q, want this machine's name", u)
	}
}

func labAccess(addr, token string) lab.Access { return lab.Access{Addr: addr, Token: token} }
