// Package mail sends foodpipe's notification emails over SMTP and reads back
// what a test mail server (Mailpit) received, through its REST API.
//
// A sent email cannot be taken back, and no transaction reaches the mail
// server: what the notifier guarantees is said by the order of its steps
// (package notify), not here. This package gives each email what makes a
// repeat recognisable, a Message-ID derived from the order id alone
// (MessageID), and sorts the server's refusals in two: one address refused
// for good (ErrRefused: a 5xx reply to RCPT TO), and everything else, a
// server down, slow, or answering 4xx, which passes (ErrUnavailable).
package mail

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

var (
	// ErrRefused is a mail server's permanent refusal of one recipient (a
	// 5xx reply to RCPT TO): sending again cannot help.
	ErrRefused = errors.New("recipient refused")
	// ErrUnavailable is any other failure to hand an email over: the server
	// is down, refuses connections, times out or answers 4xx. It passes, and
	// the same email is sent again.
	ErrUnavailable = errors.New("mail server unavailable")
	// ErrURL is an SMTP URL foodpipe cannot use.
	ErrURL = errors.New("smtp url")
)

// From is the notifications' sender, on a domain reserved for examples
// (RFC 2606): no real mailbox is ever written to or from.
const From = "orders@foodpipe.example.com"

// idDomain is the right-hand side of every Message-ID foodpipe makes.
const idDomain = "notify.foodpipe.example.com"

// MessageID is the Message-ID of the email about orderID, with its angle
// brackets. It depends on the order id alone, so that an email sent again
// after a crash carries the same one and a receiver can drop the repeat. An
// id with characters a Message-ID cannot carry is replaced by its SHA-256.
func MessageID(orderID string) string {
	return "<" + localPart(orderID) + "@" + idDomain + ">"
}

func localPart(id string) string {
	ok := id != "" && len(id) <= 64
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			ok = false
			break
		}
	}
	if ok && !strings.HasPrefix(id, ".") && !strings.HasSuffix(id, ".") && !strings.Contains(id, "..") {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256-" + hex.EncodeToString(sum[:])
}

// Message is one email.
type Message struct {
	To        string
	MessageID string // with its angle brackets (MessageID)
	Subject   string
	Body      string // plain text; lines end in \n
}

// bytes is the message as SMTP's DATA carries it: headers, a blank line,
// the body with CRLF line ends and dot-stuffing left to the client.
func (m Message) bytes(date time.Time) []byte {
	var b strings.Builder
	header := func(k, v string) { b.WriteString(k + ": " + oneLine(v) + "\r\n") }
	header("From", From)
	header("To", m.To)
	header("Subject", m.Subject)
	header("Message-ID", m.MessageID)
	header("Date", date.Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n"))
	return []byte(b.String())
}

// oneLine keeps a header value on its line: a CR or LF in it would start a
// header of the sender's choosing.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}

// Server is an SMTP server to send to, as an SMTP URL names it:
// smtp://host:port (no authentication, no TLS: the mail servers foodpipe
// talks to are test servers on its own network).
type Server struct {
	addr string
}

// ParseURL reads an SMTP URL.
func ParseURL(raw string) (Server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Server{}, fmt.Errorf("%w %q: %w", ErrURL, raw, err)
	}
	if u.Scheme != "smtp" || u.Hostname() == "" || u.Port() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return Server{}, fmt.Errorf("%w %q: want smtp://host:port", ErrURL, raw)
	}
	return Server{addr: u.Host}, nil
}

// Addr is the server's host:port.
func (s Server) Addr() string { return s.addr }

// timeout bounds one conversation with the server: a server that stops
// answering must not hold a batch for ever.
const timeout = 10 * time.Second

// Session is one connection to the server, over which emails are sent one
// after the other. It is not safe for concurrent use.
type Session struct {
	conn net.Conn
	c    *smtp.Client
}

// Dial opens a session; its error wraps ErrUnavailable.
func (s Server) Dial(ctx context.Context) (*Session, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	host, _, _ := net.SplitHostPort(s.addr)
	c, err := smtp.NewClient(conn, host)
	if err == nil {
		err = c.Hello("foodpipe.example.com")
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: greeting: %w", ErrUnavailable, err)
	}
	return &Session{conn: conn, c: c}, nil
}

// Check says whether the server answers: a greeting, a NOOP and a QUIT.
func (s Server) Check(ctx context.Context) error {
	se, err := s.Dial(ctx)
	if err != nil {
		return err
	}
	defer se.Close()
	if err := se.c.Noop(); err != nil {
		return fmt.Errorf("%w: noop: %w", ErrUnavailable, err)
	}
	return nil
}

// Send hands m over. Its error wraps ErrRefused when the server refuses the
// recipient for good (the session stays usable), else ErrUnavailable (the
// session is done: close it).
func (se *Session) Send(m Message) error {
	_ = se.conn.SetDeadline(time.Now().Add(timeout))
	if err := se.c.Mail(From); err != nil {
		return fmt.Errorf("%w: MAIL FROM: %w", ErrUnavailable, err)
	}
	if err := se.c.Rcpt(m.To); err != nil {
		if tp, ok := errors.AsType[*textproto.Error](err); ok && tp.Code >= 500 && tp.Code < 600 {
			if rerr := se.c.Reset(); rerr != nil {
				return fmt.Errorf("%w: RSET after a refusal: %w", ErrUnavailable, rerr)
			}
			return fmt.Errorf("%w: %s: %d %s", ErrRefused, m.To, tp.Code, tp.Msg)
		}
		return fmt.Errorf("%w: RCPT TO: %w", ErrUnavailable, err)
	}
	w, err := se.c.Data()
	if err != nil {
		return fmt.Errorf("%w: DATA: %w", ErrUnavailable, err)
	}
	bw := bufio.NewWriter(w)
	if _, err := bw.Write(m.bytes(time.Now())); err != nil {
		return fmt.Errorf("%w: DATA: %w", ErrUnavailable, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("%w: DATA: %w", ErrUnavailable, err)
	}
	// The server's 250 to the end of DATA is when the email is its: a crash
	// before it arrives leaves the sender unable to know whether it went.
	if err := w.Close(); err != nil {
		return fmt.Errorf("%w: end of DATA: %w", ErrUnavailable, err)
	}
	return nil
}

// Close says QUIT and closes the connection.
func (se *Session) Close() {
	_ = se.conn.SetDeadline(time.Now().Add(time.Second))
	_ = se.c.Quit()
	_ = se.conn.Close()
}
