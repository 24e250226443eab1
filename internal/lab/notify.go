package lab

// The notifications panel: docs/KAFKA-CONCEPTS.md section 10 in the lab.
// A notifier (`foodpipe notify`, the order-notifications group) emails each
// customer through a real mail server: the user's (SMTP_URL) or a Mailpit
// the lab starts (harness.StartMailServer). The panel shows the emails as
// the mail server's API lists them, the group's record in PostgreSQL
// (sent, refused, in doubt) and its lag. One button holds the notifier at
// its crash point between sending a batch and recording it (fault.Hold,
// as the delivery-semantics panel holds its members), kills it there,
// starts it again, and counts the emails its successor sent twice: from
// the notifications table and from the mail server, never from a log.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/fault"
	"foodpipe/internal/harness"
	"foodpipe/internal/inspect"
	"foodpipe/internal/mail"
	"foodpipe/internal/notify"
	"foodpipe/internal/store"
)

// ErrNoNotifier: the notifier is not running.
var ErrNoNotifier = errors.New("the notifier is not running: start it first")

const (
	// notifierID is the notifier's name (and static member id).
	notifierID = "notify-1"
	// notifyShown are the latest emails the panel lists; notifyRepeatsShown
	// the repeated ones a round lists.
	notifyShown        = 6
	notifyRepeatsShown = 6
	// notifyReadEvery: past notifyReadAll emails, the inbox is read every
	// so many samples rather than each (it is read whole to count repeats).
	notifyReadAll   = 3000
	notifyReadEvery = 5
	// notifierWriters is the notifier's CONSUMER_WRITERS: one batch at a
	// time, so that a kill held at the crash point leaves that batch in
	// doubt, and no other half sent.
	notifierWriters = 1
)

// NotifyView is the panel as the page shows it.
type NotifyView struct {
	// Status: off (not started), running, holding (restarted armed, on
	// its way to its crash point), settling (killed and restarted, its
	// successor sending again), final, failed.
	Status string `json:"status"`
	Group  string `json:"group"`
	// Server is the mail server's SMTP URL, API its REST API; Started: the
	// lab started it (a Mailpit), else it is the user's (SMTP_URL).
	Server  string `json:"server,omitempty"`
	API     string `json:"api,omitempty"`
	Started bool   `json:"started"`
	ID      string `json:"id,omitempty"`
	Pid     int    `json:"pid,omitempty"`
	Ended   bool   `json:"ended"`
	// CrashPoint is where a round holds the notifier.
	CrashPoint string `json:"crash_point"`
	// Writers is the notifier's CONSUMER_WRITERS, BatchSize its
	// NOTIFY_BATCH_SIZE: what one kill can leave in doubt.
	Writers   int         `json:"writers"`
	BatchSize int         `json:"batch_size"`
	Counts    NotifyCount `json:"counts"`
	Lag       int64       `json:"lag"`
	// Recent are the latest emails the mail server received, newest first.
	Recent []NotifyMail `json:"recent"`
	Round  *NotifyRound `json:"round,omitempty"`
	Error  string       `json:"error,omitempty"`
}

// NotifyCount is the group's record (PostgreSQL) beside what the mail
// server holds (its API).
type NotifyCount struct {
	Sent    int64 `json:"sent"`
	Sending int64 `json:"sending"`
	Refused int64 `json:"refused"`
	InDoubt int64 `json:"in_doubt"`
	Resent  int64 `json:"resent"`
	// Received, Distinct and Duplicates are the mail server's: -1 before it
	// was read.
	Received   int `json:"received"`
	Distinct   int `json:"distinct"`
	Duplicates int `json:"duplicates"`
}

// NotifyMail is one email as the mail server lists it.
type NotifyMail struct {
	OrderID   string    `json:"order_id"`
	To        string    `json:"to"`
	MessageID string    `json:"message_id"`
	At        time.Time `json:"at"`
	// Times is how many emails with this Message-ID the server holds.
	Times int `json:"times"`
}

// NotifyRound is one press of the kill button and what came of it.
type NotifyRound struct {
	KilledAt time.Time `json:"killed_at,omitzero"`
	// Held is how many claims the killed notifier left 'sending';
	// Unrecorded how many of them the mail server had received: sent, then
	// killed before recording.
	Held       int `json:"held"`
	Unrecorded int `json:"unrecorded"`
	// Of the held orders, once settled: Resent is what PostgreSQL's in_doubt
	// predicts reached the server twice (rows recorded sent), Duplicates what
	// the server holds beyond one each, Refused those refused (twice).
	Resent     int64 `json:"resent"`
	Duplicates int   `json:"duplicates"`
	Refused    int64 `json:"refused"`
	// Elsewhere are the duplicates the server gained during the round of
	// orders not held: none, if the design holds.
	Elsewhere int          `json:"elsewhere"`
	Repeated  []NotifyMail `json:"repeated"`
	Final     bool         `json:"final"`
	Why       string       `json:"why,omitempty"`
	Error     string       `json:"error,omitempty"`
}

// notifyState is what the lab keeps of the panel; Lab.mu guards it.
type notifyState struct {
	status   string
	starting bool // the mail server is being started
	proc     *harness.Process
	ms       *harness.MailServer // the Mailpit the lab started, nil when the user's
	msDir    string
	smtpURL  string
	apiURL   string
	samples  int
	round    *NotifyRound
	view     NotifyView
}

// notifySample is one reading of the notifier, taken outside the lock.
type notifySample struct {
	on       bool
	view     inspect.Group
	viewErr  error
	count    store.NoticeCount
	countErr error
	inbox    *mail.Inbox
	inboxErr error
}

// notifierEdit is the notifier's configuration in the lab: the database
// through the cut proxy, the mail server's API (for its
// foodpipe_notify_receiver_duplicates), and notifierWriters. Call with
// l.mu held.
func (l *Lab) notifierEdit(c *config.Config) {
	c.DatabaseURL, c.SessionTimeout, c.LogLevel = l.childDB, l.st.session, slog.LevelWarn
	c.MailAPIURL, c.Writers = l.st.notify.apiURL, notifierWriters
}

// StartNotifier starts the notifier, and first the mail server when the
// user named none: a Mailpit on loopback ports.
func (l *Lab) StartNotifier() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := &l.st.notify
	switch {
	case n.starting || n.status == "holding" || n.status == "settling":
		return fmt.Errorf("start the notifier: %w", ErrBusy)
	case n.proc != nil && !n.proc.Ended():
		return fmt.Errorf("start the notifier: %w", ErrAlreadyRunning)
	}
	if n.smtpURL == "" {
		// Mailpit takes a second or so to answer: the lab goes on sampling
		// meanwhile, and a second press is refused as busy.
		n.starting = true
		l.mu.Unlock()
		ms, dir, err := startMailServer(l.ctx)
		l.mu.Lock()
		n.starting = false
		if err != nil {
			return err
		}
		n.ms, n.msDir, n.smtpURL, n.apiURL = ms, dir, ms.SMTPURL, ms.APIURL
		l.st.event(time.Now(), "process", fmt.Sprintf("mail server started: Mailpit, SMTP %s, API %s", ms.SMTPURL, ms.APIURL))
	}
	p, err := l.pl.SpawnNotifier(notifierID, n.smtpURL, l.notifierEdit)
	if err != nil {
		return fmt.Errorf("start the notifier: %w", err)
	}
	n.proc = p
	if n.status == "" || n.status == "off" || n.status == "failed" {
		n.status = "running"
	}
	l.st.facts.notifyStarted++
	l.st.event(time.Now(), "process", fmt.Sprintf("%s started (pid %d), group %s: claim, send over SMTP to %s, record", notifierID, p.Pid(), l.cfg.NotifyGroup, n.smtpURL))
	return nil
}

// startMailServer starts a Mailpit keeping its messages in a directory of
// its own, removed when it is stopped (closeNotify).
func startMailServer(ctx context.Context) (*harness.MailServer, string, error) {
	dir, err := os.MkdirTemp("", "foodpipe-lab-mail-")
	if err != nil {
		return nil, "", fmt.Errorf("start the mail server: %w", err)
	}
	ms, err := harness.StartMailServer(ctx, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start the mail server: %w", err)
	}
	return ms, dir, nil
}

// notifierExited tells in the timeline the end of the notifier outside a
// round (a round's kill is its own to tell). Call with l.mu held.
func (l *Lab) notifierExited(e harness.ProcessExited) bool {
	n := &l.st.notify
	if e.Name != notifierID {
		return false
	}
	if n.proc != nil && n.proc.Pid() == e.Pid && n.status != "holding" && n.status != "settling" {
		how := "exit 0"
		if e.Err != nil {
			how = e.Err.Error()
		}
		l.st.event(e.At, "process", fmt.Sprintf("%s (pid %d) ended: %s; group %s falls behind until it is started again", e.Name, e.Pid, how, l.cfg.NotifyGroup))
	}
	return true
}

// KillNotifier starts a round: the notifier is replaced by one held at its
// crash point (notify.CrashPoint), killed there (SIGKILL) once it has sent
// a batch and before it records it, started again unarmed, and the emails
// its successor sends again are counted once every claim is settled.
func (l *Lab) KillNotifier() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := &l.st.notify
	switch {
	case n.status == "holding" || n.status == "settling":
		return fmt.Errorf("kill the notifier: a round is %s: %w", n.status, ErrBusy)
	case n.proc == nil || n.proc.Ended():
		return fmt.Errorf("kill the notifier: %w", ErrNoNotifier)
	case l.st.paused || l.st.rate == 0:
		return fmt.Errorf("kill the notifier: %w", ErrNoOrders)
	}
	n.status, n.round = "holding", &NotifyRound{Repeated: []NotifyMail{}}
	l.st.facts.notifyRounds++
	l.st.event(time.Now(), "fault", fmt.Sprintf("notifications: %s restarted, to be held at %s (after sending a batch, before recording it)", notifierID, notify.CrashPoint))
	l.wg.Go(l.notifyRound)
	return nil
}

// notifyRound runs a round KillNotifier started, to its end.
func (l *Lab) notifyRound() {
	ctx := l.ctx
	p, err := l.replaceNotifier(true)
	if err == nil {
		err = harness.AwaitHeld(ctx, []*harness.Process{p}, semHoldLimit)
	}
	if err != nil {
		if p != nil {
			_, _ = harness.KillAtOnce([]*harness.Process{p})
		}
		if ctx.Err() != nil {
			return // the lab is closing
		}
		_, rerr := l.replaceNotifier(false)
		l.notifyFailed(errors.Join(err, rerr))
		return
	}
	// Held: it sent its batch and recorded none of it. What it leaves is
	// read before the kill, as nothing moves now: its claims, which of
	// them reached the mail server, and the server's duplicates so far.
	st := l.pl.Store.Notifications()
	held, err := st.Sending(ctx, l.cfg.NotifyGroup)
	var before mail.Inbox
	if err == nil {
		before, err = mail.ReadInbox(ctx, l.mailAPI())
	}
	at, kerr := harness.KillAtOnce([]*harness.Process{p})
	if err = errors.Join(err, kerr); err != nil {
		_, rerr := l.replaceNotifier(false)
		l.notifyFailed(errors.Join(err, rerr))
		return
	}
	isHeld := make(map[string]bool, len(held))
	for _, id := range held {
		isHeld[id] = true
	}
	unrecorded := 0
	for _, m := range before.Messages {
		if isHeld[mail.OrderOf(m.MessageID)] {
			unrecorded++
		}
	}
	l.mu.Lock()
	r := l.st.notify.round
	r.KilledAt, r.Held, r.Unrecorded = at[0], len(held), unrecorded
	l.st.notify.status = "settling"
	l.st.event(at[0], "fault", fmt.Sprintf("notifications: %s killed (SIGKILL) at %s: %d emails sent and not recorded, %d claims left 'sending'",
		notifierID, notify.CrashPoint, unrecorded, len(held)))
	l.mu.Unlock()
	if _, err := l.replaceNotifier(false); err != nil {
		l.notifyFailed(err)
		return
	}
	l.settleNotify(ctx, held, before.Duplicates)
}

// mailAPI is the mail server's API URL.
func (l *Lab) mailAPI() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.notify.apiURL
}

// replaceNotifier stops the notifier (SIGTERM: it records its batch
// first; a killed one has ended already) and starts it again, held at its
// crash point or unarmed, whatever this process's environment arms.
func (l *Lab) replaceNotifier(held bool) (*harness.Process, error) {
	if err := l.ctx.Err(); err != nil {
		return nil, err // the lab is closing: its pipeline stops every child
	}
	l.mu.Lock()
	old := l.st.notify.proc
	l.mu.Unlock()
	if old != nil {
		_ = old.Stop(10 * time.Second) // ended, however it took the signal
	}
	arm := fault.Env + "="
	if held {
		arm += fault.Hold(notify.CrashPoint)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	p, err := l.pl.SpawnNotifier(notifierID, l.st.notify.smtpURL, l.notifierEdit, arm)
	if err != nil {
		return nil, fmt.Errorf("start the notifier: %w", err)
	}
	l.st.notify.proc = p
	return p, nil
}

// settleNotify counts, until every held claim is settled and two counts a
// tick apart agree, what became of the held orders: in PostgreSQL (their
// in_doubt, of those recorded sent) and at the mail server (their
// emails beyond one each); and the server's other duplicates, which the
// design says stay as they were (dupsBefore).
func (l *Lab) settleNotify(ctx context.Context, held []string, dupsBefore int) {
	st := l.pl.Store.Notifications()
	deadline := time.Now().Add(semSettleLimit)
	var prev *NotifyRound
	for {
		c, err := st.CountNotices(ctx, l.cfg.NotifyGroup, held)
		var in mail.Inbox
		if err == nil {
			in, err = mail.ReadInbox(ctx, l.mailAPI())
		}
		if err != nil {
			l.notifyFailed(err)
			return
		}
		got := NotifyRound{Resent: c.Resent, Refused: c.Refused, Repeated: []NotifyMail{}}
		isHeld := make(map[string]bool, len(held))
		for _, id := range held {
			isHeld[id] = true
		}
		for _, m := range latestOf(in) {
			if isHeld[m.OrderID] && m.Times > 1 {
				got.Duplicates += m.Times - 1
				got.Repeated = append(got.Repeated, m)
			}
		}
		got.Elsewhere = in.Duplicates - dupsBefore - got.Duplicates
		final := c.Sending == 0 && prev != nil && prev.Resent == got.Resent && prev.Duplicates == got.Duplicates && prev.Elsewhere == got.Elsewhere
		slices.SortFunc(got.Repeated, func(a, b NotifyMail) int { return a.At.Compare(b.At) })
		l.mu.Lock()
		r := l.st.notify.round
		r.Resent, r.Refused, r.Duplicates, r.Elsewhere = got.Resent, got.Refused, got.Duplicates, got.Elsewhere
		r.Repeated = got.Repeated[:min(len(got.Repeated), notifyRepeatsShown)]
		if final {
			r.Final, r.Why = true, notifyWhy(*r)
			l.st.notify.status = "final"
			if r.Duplicates >= 1 && int64(r.Duplicates) == r.Resent && r.Elsewhere == 0 {
				l.st.facts.notifyShown++
			}
			l.st.event(time.Now(), "fault", fmt.Sprintf("notifications, final: %d emails sent again in doubt (PostgreSQL's in_doubt), %d duplicates at the mail server, %d elsewhere",
				r.Resent, r.Duplicates, r.Elsewhere))
		}
		l.mu.Unlock()
		if final {
			return
		}
		if time.Now().After(deadline) {
			l.notifyFailed(fmt.Errorf("the held claims not settled within %v: %d still 'sending'", semSettleLimit, c.Sending))
			return
		}
		prev = &got
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.tick):
		}
	}
}

// notifyWhy says in words what a final round shows.
func notifyWhy(r NotifyRound) string {
	if r.Unrecorded == 0 {
		return "It was killed with no email of its batch out: nothing was in doubt, nothing was sent twice."
	}
	s := fmt.Sprintf("It sent %d emails, then was killed before recording them: their rows still said 'sending'. "+
		"Its successor found those claims under another process's name, counted each in in_doubt, and sent these %d again with the same Message-ID; "+
		"the mail server holds %d duplicates, as PostgreSQL's in_doubt predicts (%d). A receiver that drops repeated Message-IDs shows each once.",
		r.Unrecorded, r.Resent, r.Duplicates, r.Resent)
	if r.Refused > 0 {
		s += fmt.Sprintf(" %d of the batch went to an address the server refuses: refused again, set aside as a dead letter, never received.", r.Refused)
	}
	if int64(r.Duplicates) != r.Resent || r.Elsewhere != 0 {
		s += fmt.Sprintf(" The counts disagree (%d elsewhere): the at-least-once bound did not hold as predicted.", r.Elsewhere)
	}
	return s
}

// notifyFailed ends a round with err.
func (l *Lab) notifyFailed(err error) {
	l.roundFailed("notifications round", err, func(msg string) {
		l.st.notify.status = "failed"
		if r := l.st.notify.round; r != nil {
			r.Error = msg
		}
	})
}

// sampleNotify reads the group's record, its lag and (every tick while it
// is small, else every few) the mail server's inbox.
func (l *Lab) sampleNotify(ctx context.Context) notifySample {
	l.mu.Lock()
	n := &l.st.notify
	on := n.status != "" && n.status != "off"
	api := n.apiURL
	n.samples++
	readInbox := n.view.Counts.Received < notifyReadAll || n.samples%notifyReadEvery == 0
	l.mu.Unlock()
	s := notifySample{on: on}
	if !on {
		return s
	}
	s.view, s.viewErr = inspect.Read(ctx, inspect.Source{Admin: l.adm, Store: l.pl.Store}, l.cfg.Topic, l.cfg.NotifyGroup)
	s.count, s.countErr = l.pl.Store.Notifications().CountNotices(ctx, l.cfg.NotifyGroup, nil)
	if readInbox {
		in, err := mail.ReadInbox(ctx, api)
		s.inbox, s.inboxErr = &in, err
	}
	return s
}

// foldNotify takes a reading into the panel. Call with l.mu held.
func (l *Lab) foldNotify(s notifySample) NotifyView {
	n := &l.st.notify
	v := &n.view
	v.Group, v.CrashPoint, v.BatchSize, v.Writers = l.cfg.NotifyGroup, notify.CrashPoint, l.cfg.NotifyBatchSize, notifierWriters
	v.Status = n.status
	if v.Status == "" {
		v.Status = "off"
	}
	v.Server, v.API, v.Started = n.smtpURL, n.apiURL, n.ms != nil
	v.ID, v.Pid, v.Ended = "", 0, false
	if n.proc != nil {
		v.ID, v.Pid = notifierID, n.proc.Pid()
		v.Ended = n.proc.Ended() && n.status != "holding" && n.status != "settling"
	}
	if v.Recent == nil {
		v.Recent, v.Counts.Received = []NotifyMail{}, -1
	}
	var errs []error
	if s.on {
		if s.viewErr == nil && s.view.DBErr == nil {
			v.Lag = s.view.Lag()
		}
		if s.countErr == nil {
			c := s.count
			v.Counts.Sent, v.Counts.Sending, v.Counts.Refused, v.Counts.InDoubt, v.Counts.Resent = c.Sent, c.Sending, c.Refused, c.InDoubt, c.Resent
		}
		if s.inbox != nil && s.inboxErr == nil {
			in := *s.inbox
			v.Counts.Received, v.Counts.Distinct, v.Counts.Duplicates = len(in.Messages), in.Distinct, in.Duplicates
			latest := latestOf(in)
			v.Recent = append([]NotifyMail{}, latest[max(0, len(latest)-notifyShown):]...) // [] not null for the page
			slices.Reverse(v.Recent)
			if in.Distinct > 0 {
				l.st.facts.notifyEmails++
			}
		}
		errs = append(errs, s.viewErr, s.countErr, s.inboxErr)
	}
	v.Error = ""
	if err := errors.Join(errs...); err != nil {
		v.Error = err.Error()
	}
	out := *v
	out.Recent = slices.Clone(v.Recent)
	if n.round != nil {
		r := *n.round
		r.Repeated = slices.Clone(r.Repeated)
		out.Round = &r
	}
	return out
}

// latestOf is each Message-ID of in once, at its last arrival, oldest
// first, with how many times it came.
func latestOf(in mail.Inbox) []NotifyMail {
	at := make(map[string]int, in.Distinct)
	var out []NotifyMail
	for _, m := range in.Messages {
		to := ""
		if len(m.To) > 0 {
			to = m.To[0]
		}
		nm := NotifyMail{OrderID: mail.OrderOf(m.MessageID), To: to, MessageID: m.MessageID, At: m.At, Times: 1}
		if i, ok := at[m.MessageID]; ok {
			nm.Times = out[i].Times + 1
			out[i].Times = -1 // superseded by this later arrival
		}
		at[m.MessageID] = len(out)
		out = append(out, nm)
	}
	return slices.DeleteFunc(out, func(m NotifyMail) bool { return m.Times < 0 })
}

// closeNotify stops the mail server the lab started, once its children
// are gone.
func (l *Lab) closeNotify() {
	l.mu.Lock()
	n := &l.st.notify
	ms, dir := n.ms, n.msDir
	n.ms = nil
	l.mu.Unlock()
	if ms != nil {
		ms.Stop()
		_ = os.RemoveAll(dir)
	}
}
