// Package notify is `foodpipe notify`'s store: a member of the
// order-notifications group (a consumer.Consumer like the orders and
// analytics groups' members) writes each batch through it, and it emails
// each customer that their order was received.
//
// The email leaves the database: no transaction reaches the mail server.
// So the guarantee is at least once, with every repeat recognisable and
// counted, by these steps for each batch (WriteBatch):
//
//  1. claim: in one transaction, each order not yet settled is marked
//     'sending' by this process (store.Notifications.Claim). An order whose
//     claim another process left unsettled is marked in doubt.
//  2. send: each claimed order's email, with a Message-ID derived from the
//     order id alone (mail.MessageID), over one SMTP session.
//  3. record: in one transaction, each outcome ('sent', or 'refused' with a
//     dead letter) and the group's next offsets (store.Notifications.Record);
//     then the consumer commits to Kafka.
//
// A process killed between 2 and 3 leaves claims that say 'sending': the
// member that takes the partition over sends those again, and only those,
// and counts them (foodpipe_notify_in_doubt_total). Each may reach the
// receiver twice, with the same Message-ID: duplicates at the receiver are
// at most the in-doubt sends, never another order's. A receiver that drops
// a Message-ID it has seen makes the effect exactly once. A process killed
// anywhere else sends nothing twice: before 2 nothing was sent, after 3
// the record says 'sent'. CrashPoint is the kill between 2 and 3 that tests
// and the lab make on purpose (fault.Crash, or held there: fault.Hold).
//
// The mail server failing is handled like the database: the failure wraps
// store.ErrUnavailable, which the consumer retries with backoff behind its
// circuit breaker, leaving the group while it lasts (consumer.AwayAfter)
// and never skipping an order. Emails this process sent before the failure
// are not sent again when it retries (it remembers them until recorded).
// A permanent refusal of one address (a 5xx reply to RCPT TO) is recorded as
// 'refused' and set aside as a dead letter (dlq.ReasonRefused).
package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"foodpipe/internal/fault"
	"foodpipe/internal/mail"
	"foodpipe/internal/order"
	"foodpipe/internal/store"
	"foodpipe/internal/telemetry"
)

// CrashPoint is the fault point between sending a batch's emails and
// recording them, reached only by a batch that sent at least one: a process
// killed there leaves every email it sent in doubt, each to be sent again
// by its successor.
const CrashPoint = "notify.after-send"

// Store is the notifier's consumer.Store.
type Store struct {
	n      *store.Notifications
	server mail.Server
	// sender names this process in its claims: a claim of another name
	// left 'sending' is one a process ended on.
	sender string
	m      *telemetry.Metrics
	log    *slog.Logger

	mu sync.Mutex
	// sent are the orders whose email this process sent and has not yet
	// recorded: a batch retried after a failure does not send them again.
	sent map[string]bool
}

// New is the notifier's store on st, sending to server. m may be nil.
func New(st *store.Store, server mail.Server, m *telemetry.Metrics, log *slog.Logger) *Store {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Store{n: st.Notifications(), server: server, sender: "notify-" + hex.EncodeToString(b),
		m: m, log: log, sent: map[string]bool{}}
}

// Sender is the name this process claims notifications under.
func (s *Store) Sender() string { return s.sender }

// Message is the email telling o's customer that o was received.
func Message(o order.Order) mail.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\nwe received your order %s:\n\n", o.CustomerID, o.OrderID)
	for _, it := range o.Items {
		fmt.Fprintf(&b, "  %d x %s at %s\n", it.Quantity, it.Name, it.Price)
	}
	fmt.Fprintf(&b, "\nTotal: %s\n\nfoodpipe (a synthetic order: nobody will deliver it)\n", o.TotalAmount)
	return mail.Message{To: order.Email(o.CustomerID), MessageID: mail.MessageID(o.OrderID),
		Subject: "Order " + o.OrderID + " received", Body: b.String()}
}

// WriteBatch claims, sends and records the batch's orders (see the package
// comment). Its error wraps store.ErrUnavailable while the mail server
// cannot take the emails, store.ErrStaleOffsets when another member has
// settled the batch, or a database error.
func (s *Store) WriteBatch(ctx context.Context, b store.Batch) (store.Result, error) {
	notices := make([]store.Notice, 0, len(b.Rows))
	msgs := make(map[string]mail.Message, len(b.Rows))
	for _, r := range b.Rows {
		if _, seen := msgs[r.Order.OrderID]; seen {
			continue
		}
		m := Message(r.Order)
		msgs[r.Order.OrderID] = m
		notices = append(notices, store.Notice{OrderID: r.Order.OrderID, To: m.To, MessageID: m.MessageID})
	}
	claimed, err := s.n.Claim(ctx, b.Group, s.sender, b.Offsets, notices)
	if err != nil {
		return store.Result{}, err
	}
	if n := len(claimed.TakenOver); n > 0 {
		s.m.NotifyInDoubt.Add(float64(n))
		s.log.Warn("sending again the emails a notifier ended on between sending and recording: each may reach the receiver twice, with the same Message-ID",
			slog.Int("count", n), slog.String("first_order_id", claimed.TakenOver[0]))
	}
	sent := make(map[string]bool, len(claimed.Open))
	refused := map[string]error{}
	if err := s.send(ctx, notices, claimed.Open, msgs, sent, refused); err != nil {
		return store.Result{}, err
	}
	if len(sent) > 0 {
		fault.Crash(CrashPoint)
	}
	res, err := s.n.Record(ctx, b, sent, refused)
	if err == nil || errors.Is(err, store.ErrStaleOffsets) {
		// Recorded, or another member's now: either way this process
		// does not send them again.
		s.mu.Lock()
		for id := range sent {
			delete(s.sent, id)
		}
		s.mu.Unlock()
	}
	if err != nil {
		return store.Result{}, err
	}
	return res, nil
}

// send sends the open notices' emails over one session, filling sent and
// refused. It stops at the first failure that is not a refusal.
func (s *Store) send(ctx context.Context, notices []store.Notice, open map[string]bool, msgs map[string]mail.Message,
	sent map[string]bool, refused map[string]error) error {
	var se *mail.Session
	defer func() {
		if se != nil {
			se.Close()
		}
	}()
	for _, x := range notices {
		if !open[x.OrderID] {
			continue
		}
		s.mu.Lock()
		done := s.sent[x.OrderID]
		s.mu.Unlock()
		if done {
			sent[x.OrderID] = true // sent by this process before a failure; not again
			continue
		}
		if se == nil {
			var err error
			if se, err = s.server.Dial(ctx); err != nil {
				s.m.NotifyRetried.Inc()
				return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
			}
		}
		err := se.Send(msgs[x.OrderID])
		switch {
		case err == nil:
			sent[x.OrderID] = true
			s.mu.Lock()
			s.sent[x.OrderID] = true
			s.mu.Unlock()
			s.m.NotifySent.Inc()
		case errors.Is(err, mail.ErrRefused):
			refused[x.OrderID] = fmt.Errorf("%w: %w", store.ErrRefused, err)
			s.m.NotifyRefused.Inc()
			s.log.Warn("mail server refused the address for good: set aside as a dead letter",
				telemetry.OrderID(x.OrderID), slog.String("to", x.To), slog.Any("err", err))
		default:
			s.m.NotifyRetried.Inc()
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
	}
	return nil
}

// Writable checks that both the database and the mail server answer: a
// member away from its group comes back only when it can do its work.
func (s *Store) Writable(ctx context.Context) error {
	if err := s.n.Writable(ctx); err != nil {
		return err
	}
	if err := s.server.Check(ctx); err != nil {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return nil
}

// Offsets returns the next offset to read per partition, as stored.
func (s *Store) Offsets(ctx context.Context, group, topic string) (map[int32]int64, error) {
	return s.n.Offsets(ctx, group, topic)
}

// GroupOffsets returns every next offset stored for group.
func (s *Store) GroupOffsets(ctx context.Context, group string) ([]store.StoredOffset, error) {
	return s.n.GroupOffsets(ctx, group)
}

// PublishDeadLetters publishes the group's dead letters: the refused addresses.
func (s *Store) PublishDeadLetters(ctx context.Context, group string, limit int,
	publish func(context.Context, []store.DeadLetter) []error) (int, error) {
	return s.n.PublishDeadLetters(ctx, group, limit, publish)
}

// WatchReceiver reads what the receiver holds through its API (apiURL, a
// Mailpit's) every interval until ctx ends, and sets
// foodpipe_notify_receiver_duplicates to the emails that repeat a
// Message-ID: the duplicates the design allows (at most the sends in
// doubt), as the receiver sees them. Only a test mail server has such an
// API; a receiver that does not answer leaves the gauge absent, said once.
func WatchReceiver(ctx context.Context, apiURL string, interval time.Duration, m *telemetry.Metrics, log *slog.Logger) {
	registered, said := false, false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		in, err := mail.ReadInbox(ctx, apiURL)
		switch {
		case err == nil:
			if !registered {
				registered = m.Registry.Register(m.NotifyReceiverDuplicates) == nil
			}
			m.NotifyReceiverDuplicates.Set(float64(in.Duplicates))
		case !said && ctx.Err() == nil:
			said = true
			log.Info("the receiver's API does not answer: foodpipe_notify_receiver_duplicates stays unset until it does",
				slog.String("mail_api_url", apiURL), slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
