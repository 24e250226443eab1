// Package lab is the Kafka lab: the whole pipeline running, watched live and
// broken on purpose from a web page. It runs a broker, a database, one
// producer in this process and consumers as child processes (so that a kill
// is a real SIGKILL), samples what they do through typed APIs (the group as
// the coordinator describes it, the store's queries, the producer's
// acknowledgements, the harness's events, each child's /metrics), checks the
// pipeline's invariants as it goes, and serves it all as Server-Sent Events
// to the page embedded in web/. Actions are POSTs (see server.go).
package lab

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/order"
)

// MaxConsumers bounds the consumers the lab runs at once: each is a process.
const MaxConsumers = 8

// Options say how to start the lab.
type Options struct {
	// Config is the validated configuration; Brokers and DatabaseURL are
	// replaced by what the harness starts or finds unless the user named them.
	Config config.Config
	// Broker is harness.ChildBroker (restartable) or harness.ExternalBroker.
	Broker       harness.BrokerMode
	UserDatabase bool
	// Log is the lab's log, and its Kafka clients'; ChildLog, when not nil,
	// is given the children's output as well (else it is kept for reports).
	// Neither is the terminal's business: the page says what happens.
	Log      *slog.Logger
	ChildLog io.Writer
	// Consumers to start with (at least 1).
	Consumers int
	// Rate is the producer's starting rate, orders per second (0: paused).
	Rate float64
	// Tick is how often the lab samples the pipeline; 1 s when zero.
	Tick time.Duration
	// UserMailServer: the notifier sends to Config's SMTPURL and reads
	// MailAPIURL (the user set SMTP_URL); else the lab starts a Mailpit.
	UserMailServer bool
}

// Lab is a running lab. Close it when done.
type Lab struct {
	cfg       config.Config
	pl        *harness.Pipeline
	proxy     *harness.CutProxy // nil when the database is not reached over TCP
	childDB   string            // the consumers' DATABASE_URL, through the proxy
	pcl       *kgo.Client
	adm       *kadm.Client
	closeAdm  func()
	dlq       *dlqTail
	txn       *txnLab // the transactional producer and its readers (txn.go)
	log       *slog.Logger
	tick      time.Duration
	started   time.Time
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	// prodMu orders the producer's runs: one at a time, the next started
	// once the last has ended.
	prodMu   sync.Mutex
	prodStop context.CancelFunc
	prodDone chan struct{}
	gen      *order.Generator // the producer's, used by one run at a time
	craft    *order.Generator // for the messages the user sends by hand

	mu sync.Mutex
	st state
	// subs are the event streams open now; each gets every snapshot.
	subs map[chan []byte]struct{}
	last []byte // the latest snapshot, for a stream that opens
}

// Start starts the pipeline and the lab's sampling. The consumers and the
// producer start at once; the page is served by Handler.
func Start(ctx context.Context, o Options) (_ *Lab, err error) {
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	l := &Lab{log: o.Log, tick: o.Tick, started: time.Now(), subs: map[chan []byte]struct{}{},
		gen:   order.NewGenerator(uint64(time.Now().UnixNano()), nil),
		craft: order.NewGenerator(uint64(time.Now().UnixNano())^0x5eed, nil)}
	l.st = newState(o.Config, o.Broker == harness.ChildBroker)
	if o.UserMailServer {
		l.st.notify.smtpURL, l.st.notify.apiURL = o.Config.SMTPURL, o.Config.MailAPIURL
	}
	l.ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	// The lab's own database starts empty (Fresh), so that what the page
	// shows is this run's; a user's database is only read and added to.
	if l.pl, err = harness.Start(ctx, harness.Options{Config: o.Config, Broker: o.Broker, UserDatabase: o.UserDatabase,
		DBName: "foodpipe_lab", Fresh: true, Log: o.Log, ChildLog: o.ChildLog, Observe: l.observe}); err != nil {
		return nil, err
	}
	l.cfg = l.pl.Config
	if err := l.startProxy(); err != nil {
		return nil, err
	}
	// The page changes the rate as the lab runs and sends orders on demand:
	// a linger chosen for one rate would be wrong at the next.
	pcfg := l.cfg
	pcfg.ProducerRate = 0
	if l.pcl, err = l.pl.ProducerClient(ctx, pcfg, nil); err != nil {
		return nil, err
	}
	if l.adm, l.closeAdm, err = l.pl.Admin(ctx); err != nil {
		return nil, err
	}
	if err := l.baseline(ctx); err != nil {
		return nil, err
	}
	if l.dlq, err = startDLQTail(l.ctx, l.cfg, l.log); err != nil {
		return nil, err
	}
	if l.txn, err = startTxn(l.ctx, l.cfg, l.log); err != nil {
		return nil, err
	}
	for range max(o.Consumers, 1) {
		if _, err := l.addConsumer(false); err != nil {
			return nil, err
		}
	}
	if err := l.StartAnalytics(); err != nil {
		return nil, err
	}
	if err := l.setRate(o.Rate, o.Rate == 0, false); err != nil {
		return nil, err
	}
	// One sample before Start returns: the page and /state have something
	// to show from the first request.
	l.sampleOnce(true)
	l.wg.Go(l.sampleLoop)
	return l, nil
}

// startProxy puts the cut proxy between the consumers and PostgreSQL.
func (l *Lab) startProxy() error {
	u, err := url.Parse(l.cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	if u.Host == "" || u.Query().Has("host") {
		l.childDB = l.cfg.DatabaseURL // a Unix socket: there is no line to cut
		return nil
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	if l.proxy, err = harness.NewCutProxy(target); err != nil {
		return err
	}
	u.Host = l.proxy.Addr()
	l.childDB = u.String()
	return nil
}

// baseline records where the topic and the tables stand before the lab
// sends anything, so that the invariants count this run only.
func (l *Lab) baseline(ctx context.Context) error {
	t, err := l.pl.Store.Tally(ctx, l.cfg.Group)
	if err != nil {
		return err
	}
	ends, err := l.adm.ListEndOffsets(ctx, l.cfg.Topic)
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", l.cfg.Topic, err)
	}
	var hwm int64
	ends.Each(func(o kadm.ListedOffset) { hwm += o.Offset })
	l.mu.Lock()
	l.st.base = baseline{tally: t, hwm: hwm}
	l.mu.Unlock()
	return nil
}

// BrokerAddr is the broker the lab's pipeline uses.
func (l *Lab) BrokerAddr() string { return l.pl.BrokerAddr() }

// Database is the PostgreSQL the lab uses, and where it came from.
func (l *Lab) Database() (u string, source string) { return l.pl.DB.URL, string(l.pl.DB.Source) }

// Close stops the producer, the consumers, the broker and the database,
// and ends every event stream.
func (l *Lab) Close() { l.closeOnce.Do(l.close) }

func (l *Lab) close() {
	l.cancel()
	l.stopProducer()
	l.wg.Wait()
	l.closeTxn()
	if l.dlq != nil {
		l.dlq.close()
	}
	if l.pcl != nil {
		l.pcl.Close()
	}
	if l.closeAdm != nil {
		l.closeAdm()
	}
	if l.pl != nil {
		l.pl.Close()
	}
	l.closeNotify()
	if l.proxy != nil {
		l.proxy.Close()
	}
	l.mu.Lock()
	for ch := range l.subs {
		close(ch)
		delete(l.subs, ch)
	}
	l.mu.Unlock()
}

// observe takes the harness's events: a child ended, the broker restarted.
func (l *Lab) observe(e harness.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := e.(type) {
	case harness.ProcessExited:
		if l.teachingExited(e) || l.notifierExited(e) {
			return
		}
		if l.analyticsExited(e.Name) {
			l.st.event(e.At, "process", fmt.Sprintf("%s (pid %d) ended; group %s falls behind while the orders group goes on", e.Name, e.Pid, l.cfg.AnalyticsGroup))
			return
		}
		m := l.st.members[e.Name]
		if m == nil || m.Pid != e.Pid {
			// The broker, replaced on a restart (told as BrokerRestarted), a
			// teaching member, or a consumer's earlier process, which a
			// delivery-semantics round replaced under the same id.
			return
		}
		m.Status, m.Exit = "exited", "exit 0"
		if e.Err != nil {
			m.Exit = e.Err.Error()
		}
		m.Owns, m.BreakerOpen, m.Ready = nil, false, false
		// Its last word on what it owned is kept on the lanes (as their last
		// owner) until another member says it took them; it says nothing more.
		delete(l.st.claims, e.Name)
		l.st.event(e.At, "process", fmt.Sprintf("%s (pid %d) ended: %s", e.Name, e.Pid, m.Exit))
		if m.killed {
			l.st.facts.killed++
		}
	case harness.BrokerRestarted:
		l.st.brokerRestarting = false
		l.st.brokerBack = e.At
		l.st.facts.brokerRestarts++
		l.st.event(e.At, "broker", fmt.Sprintf("the broker is back after %v down", e.Down))
	}
}
