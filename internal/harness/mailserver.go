package harness

// A real mail server for the notifier (foodpipe notify): Mailpit, started
// the way the demo finds PostgreSQL. An SMTP URL from the environment is
// used as it is; else the harness starts Mailpit on free loopback ports.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"foodpipe/internal/mail"
)

// ErrNoMailpit means no Mailpit binary was found to start.
var ErrNoMailpit = errors.New("no mailpit to start: set FOODPIPE_MAILPIT to its binary, put mailpit on PATH, or run where `go tool mailpit` builds it (scripts/test-deps)")

// RefusedRecipients is what the mail server the harness starts accepts:
// every address at example.com, so that order.Email's addresses are taken,
// but order.MovedAway's (moved.example.com) is refused for good.
const RefusedRecipients = `@example\.com$`

// MailServer is a Mailpit the harness started, on loopback.
type MailServer struct {
	// SMTPURL and APIURL are its SMTP server (smtp://127.0.0.1:port) and its
	// REST API (http://127.0.0.1:port).
	SMTPURL, APIURL string
	exe             string
	args            []string
	dir             string
	smtpAddr        string
	proc            *Process
}

// MailpitPath finds the Mailpit binary: FOODPIPE_MAILPIT, else mailpit on
// PATH, else the one `go tool` builds from the module's tool directive.
func MailpitPath() (string, error) {
	if p := os.Getenv("FOODPIPE_MAILPIT"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p, nil
	}
	if _, err := exec.LookPath("go"); err == nil {
		out, err := exec.Command("go", "tool", "-n", "mailpit").Output()
		if p := strings.TrimSpace(string(out)); err == nil && p != "" {
			return p, nil
		}
	}
	return "", ErrNoMailpit
}

// StartMailServer starts Mailpit on free loopback ports, keeping its
// messages in dir (a test's temporary directory), refusing every recipient
// RefusedRecipients does not match, keeping every message (no pruning),
// and reaching out to nothing (no version check, no reverse DNS).
func StartMailServer(ctx context.Context, dir string) (*MailServer, error) {
	exe, err := MailpitPath()
	if err != nil {
		return nil, err
	}
	smtpAddr, err := FreeLoopback()
	if err != nil {
		return nil, err
	}
	httpAddr, err := FreeLoopback()
	if err != nil {
		return nil, err
	}
	s := &MailServer{SMTPURL: "smtp://" + smtpAddr, APIURL: "http://" + httpAddr, exe: exe, dir: dir, smtpAddr: smtpAddr,
		args: []string{"--smtp", smtpAddr, "--listen", httpAddr, "--database", filepath.Join(dir, "mailpit.db"),
			"--max", "0", "--disable-version-check", "--smtp-disable-rdns", "--quiet",
			"--smtp-allowed-recipients", RefusedRecipients}}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Start starts the server again after Stop, on the same ports with the
// same messages.
func (s *MailServer) Start(ctx context.Context) error {
	p, err := Spawn(Command{Name: "mailpit", Exe: s.exe, Args: s.args, Dir: s.dir})
	if err != nil {
		return err
	}
	s.proc = p
	if err := p.WaitListening(ctx, s.smtpAddr, 30*time.Second); err != nil {
		_ = p.Stop(time.Second)
		return err
	}
	server, err := mail.ParseURL(s.SMTPURL)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := server.Check(ctx)
		if err == nil {
			_, err = mail.ReadInbox(ctx, s.APIURL)
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mailpit did not answer: %w\n%s", err, p.LogTail(2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after a while): a mail
// server that is down, until Start.
func (s *MailServer) Stop() {
	if s.proc != nil {
		_ = s.proc.Stop(5 * time.Second) // ended, however it took the signal
	}
}

// Inbox is what the server received.
func (s *MailServer) Inbox(ctx context.Context) (mail.Inbox, error) {
	return mail.ReadInbox(ctx, s.APIURL)
}
