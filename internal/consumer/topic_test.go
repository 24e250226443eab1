package consumer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/kafka"
	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"
	"foodpipe/internal/telemetry"
)

const analyticsGroup = "test-analytics"

// analyticsMember starts a member of the analytics group, which counts the
// same topic into the aggregates.
func analyticsMember(t *testing.T, c *cluster, st *store.Store, id string, w io.Writer) (*Consumer, context.CancelFunc) {
	t.Helper()
	return memberWith(t, c, st.Analytics(), id, w, func(cfg *Config) { cfg.Group = analyticsGroup })
}

func counted(t *testing.T, st *store.Store) int64 {
	t.Helper()
	n, err := st.Analytics().Counted(context.Background(), analyticsGroup)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (c *cluster) admin(t *testing.T) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// storedIDs are the order ids in the orders table.
func storedIDs(t *testing.T, st *store.Store) map[string]bool {
	t.Helper()
	rows, err := st.Pool().Query(context.Background(), `SELECT order_id FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	return out
}

// quietLog is a member's log as the binary writes it (telemetry.NewLogger),
// into a buffer, with the lines counted.
type quietLog struct{ logs }

func (l *quietLog) logger() *slog.Logger {
	var lvl slog.LevelVar
	return telemetry.NewLogger(l, &lvl)
}

func (l *quietLog) lines(msg string) int {
	return strings.Count(l.String(), `"msg":"`+msg+`"`)
}

func memberLogged(t *testing.T, c *cluster, st Store, id, grp string, log *slog.Logger) (*Consumer, context.CancelFunc) {
	t.Helper()
	return runMember(t, c, st, testConfig(id, grp), log, log)
}

// Another application writes orders in Kafka transactions and aborts some:
// both groups read with read_committed, so what was aborted is never stored
// nor counted, and an open transaction holds its partitions, without an
// error, until it ends.
func TestOnlyCommittedTransactionsAreStoredAndCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 3)
	st := dbtest.NewStore(t)
	txn, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID("another-app"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	ctx := context.Background()
	produceIn := func(seed uint64, n int) []string {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		os, recs := orders(seed, n)
		for i, r := range recs {
			r.Partition = int32(i % 3)
		}
		if err := txn.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		ids := make([]string, n)
		for i, o := range os {
			ids[i] = o.OrderID
		}
		return ids
	}
	end := func(commit kgo.TransactionEndTry) {
		t.Helper()
		if err := txn.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	var committed, aborted []string
	for i := range 5 {
		ids := produceIn(uint64(100+i), 20)
		if i == 1 || i == 3 {
			end(kgo.TryAbort)
			aborted = append(aborted, ids...)
			continue
		}
		end(kgo.TryCommit)
		committed = append(committed, ids...)
	}
	// A transaction left open, then plain orders behind it.
	open := produceIn(200, 9)
	c.produceRoundRobin(t, 300, 6)

	var ol, al logs
	orders, stopOrders := member(t, c, st, "c1", &ol)
	_, stopAnalytics := analyticsMember(t, c, st, "a1", &al)
	eventually(t, "the committed orders to be stored and counted", func() bool {
		return count(t, st) >= 60 && counted(t, st) >= 60
	})
	time.Sleep(2 * time.Second) // what the open transaction holds stays held
	if n := count(t, st); n != 60 {
		t.Errorf("%d orders stored while a transaction is open, want the 60 committed", n)
	}
	if n := counted(t, st); n != 60 {
		t.Errorf("analytics counted %d orders while a transaction is open, want 60", n)
	}
	if err := orders.Ready(ctx); err != nil {
		t.Errorf("the member is not ready while a transaction is open: %v", err)
	}
	for _, l := range []string{ol.String(), al.String()} {
		if strings.Contains(l, "fetch error") {
			t.Errorf("an open transaction logged a fetch error:\n%s", l)
		}
	}

	end(kgo.TryCommit)
	eventually(t, "the transaction's orders and those behind it", func() bool {
		return count(t, st) == 75 && counted(t, st) == 75
	})
	// Each partition ends with a commit marker, which takes an offset: the
	// groups commit past it, or Kafka would count it as lag for ever.
	adm := c.admin(t)
	for _, g := range []string{group, analyticsGroup} {
		eventually(t, "group "+g+"'s committed offsets to pass the last marker", func() bool {
			v, err := kafka.InspectGroup(ctx, adm, topic, g)
			return err == nil && v.Lag() == 0
		})
	}
	stopOrders()
	stopAnalytics()
	ids := storedIDs(t, st)
	for _, id := range aborted {
		if ids[id] {
			t.Errorf("order %s of an aborted transaction is stored", id)
		}
	}
	for _, id := range append(committed, open...) {
		if !ids[id] {
			t.Errorf("committed order %s is not stored", id)
		}
	}
	if chk, err := st.Analytics().Check(ctx, analyticsGroup); err != nil || len(chk.Differences) > 0 || chk.Checked != 75 {
		t.Errorf("the aggregates differ from the orders (%v): %+v", err, chk)
	}
}

// An operator deletes the topic under running members of both groups, holds
// it deleted for a while, then creates it again and orders flow: the
// members wait without a busy loop or a flood of lines, say what happened,
// and read the new topic from its start.
func TestARecreatedTopicIsReadFromItsStartByBothGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 3)
	st := dbtest.NewStore(t)
	adm := c.admin(t)
	ctx := context.Background()
	c.produceRoundRobin(t, 1, 60)

	var ol, al quietLog
	orders, _ := memberLogged(t, c, st, "c1", group, ol.logger())
	analytics, _ := memberLogged(t, c, st.Analytics(), "a1", analyticsGroup, al.logger())
	eventually(t, "the first orders", func() bool { return count(t, st) == 60 && counted(t, st) == 60 })

	if _, err := adm.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	c.produceRoundRobin(t, 2, 30)
	eventually(t, "the new topic's orders in both groups", func() bool { return count(t, st) == 90 && counted(t, st) == 90 })

	for _, m := range []struct {
		name string
		log  *quietLog
		cons *Consumer
	}{{"orders", &ol, orders}, {"analytics", &al, analytics}} {
		// A handful of lines for a topic gone for 10 s and back, not thousands.
		if n := strings.Count(m.log.String(), "\n"); n > 40 {
			t.Errorf("%s member logged %d lines:\n%s", m.name, n, m.log.String())
		}
		if m.log.lines("the topic was deleted and created again: starting a new session to read the new topic") != 1 {
			t.Errorf("%s member did not say once that the topic was recreated:\n%s", m.name, m.log.String())
		}
		if s := m.cons.Stats(); s.Duplicates != 0 {
			t.Errorf("%s member met %d duplicates", m.name, s.Duplicates)
		}
	}
	// The new topic's offsets are stored apart from the old one's.
	offs, err := st.GroupOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	scopes := map[string][]int64{}
	for _, o := range offs {
		scopes[o.Topic] = append(scopes[o.Topic], o.Next)
	}
	if len(scopes) != 2 {
		t.Fatalf("offsets stored under %d topics, want the old and the new: %v", len(scopes), scopes)
	}
	if now := orders.scope.Load().name; !slices.Equal(scopes[now], []int64{10, 10, 10}) {
		t.Errorf("the new topic's stored offsets are %v, want 10 on each partition", scopes[now])
	}
}

// The group is stopped while orders come, and the topic's retention passes
// before it starts again: the member says which offsets of which partition
// Kafka deleted unread, counts them, and records them; the status reads
// them back. Nothing is skipped silently.
func TestMessagesThatExpireBeforeTheGroupReadsThemAreReported(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 3)
	st := dbtest.NewStore(t)
	adm := c.admin(t)
	ctx := context.Background()
	c.produceRoundRobin(t, 1, 30)
	_, stop := member(t, c, st, "c1", io.Discard)
	_, stopAnalytics := analyticsMember(t, c, st, "a1", io.Discard)
	eventually(t, "the first orders", func() bool { return count(t, st) == 30 && counted(t, st) == 30 })
	stop()
	stopAnalytics()

	c.produceRoundRobin(t, 2, 60) // offsets 10 to 29 of each partition
	setRetention := func(v *string) {
		t.Helper()
		res, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: v}}, topic)
		if err == nil {
			err = res[0].Err
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ms := "1"
	setRetention(&ms)
	time.Sleep(10 * time.Millisecond)
	c.ApplyRetention()
	setRetention(nil)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Offset != 30 {
			t.Fatalf("partition %d starts at %d after retention, want 30", o.Partition, o.Offset)
		}
	})

	var events []Expired
	var mu sync.Mutex
	var l logs
	cons, stop := memberWith(t, c, st, "c2", &l, func(cfg *Config) {
		cfg.Observe = func(e Event) {
			if x, ok := e.(Expired); ok {
				mu.Lock()
				events = append(events, x)
				mu.Unlock()
			}
		}
	})
	eventually(t, "the expired offsets to be said", func() bool {
		return testutil.ToFloat64(cons.cfg.Metrics.MessagesExpired) == 60
	})
	for p := range 3 {
		line := fmt.Sprintf(`"partition":%d,"from_offset":10,"to_offset":29,"count":20`, p)
		if !strings.Contains(l.String(), line) {
			t.Errorf("no ERROR line with %s:\n%s", line, l.String())
		}
	}
	mu.Lock()
	if len(events) != 3 {
		t.Errorf("%d Expired events, want one per partition: %+v", len(events), events)
	}
	mu.Unlock()

	// The analytics group meets the same gap, and says it the same way.
	analytics, _ := analyticsMember(t, c, st, "a2", io.Discard)
	eventually(t, "the analytics group to say the expired offsets", func() bool {
		return testutil.ToFloat64(analytics.cfg.Metrics.MessagesExpired) == 60
	})

	c.produceRoundRobin(t, 3, 15)
	eventually(t, "the orders after the gap", func() bool { return count(t, st) == 45 && counted(t, st) == 45 })
	stop()
	if got, err := st.Expired(ctx, analyticsGroup, analytics.scope.Load().name); err != nil || len(got) != 3 {
		t.Errorf("the analytics group recorded %+v (%v), want 3 ranges", got, err)
	}
	got, err := st.Expired(ctx, group, cons.scope.Load().name)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d expired ranges recorded, want 3: %+v", len(got), got)
	}
	for i, r := range got {
		if r.Partition != int32(i) || r.From != 10 || r.To != 29 {
			t.Errorf("recorded %+v, want partition %d offsets 10 to 29", r, i)
		}
	}
	if testutil.ToFloat64(cons.cfg.Metrics.MessagesExpired) != 60 {
		t.Errorf("the metric counted %v, want 60", testutil.ToFloat64(cons.cfg.Metrics.MessagesExpired))
	}
}

// A fetch that starts above the offset the member expected is an expired
// stretch only where the log starts above it too: the holes a transaction
// marker or an aborted transaction leave are no loss.
func TestAFetchPastTheLogStartIsAnExpiredStretchAndATransactionsHoleIsNot(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	st := dbtest.NewStore(t)
	cons, err := New(kafka.ClientOpts(kafka.Options{Brokers: []string{c.addr}}), st,
		testConfig("c1", group), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.pub.Close()
	cons.scope.Store(&topicScope{name: topic + "@x"})
	cons.next[0], cons.next[1] = 11, 11
	fetched := func(p int32, logStart, first int64) kgo.FetchTopicPartition {
		return kgo.FetchTopicPartition{Topic: topic, FetchPartition: kgo.FetchPartition{
			Partition: p, LogStartOffset: logStart, Records: []*kgo.Record{{Topic: topic, Partition: p, Offset: first}}}}
	}
	fs := kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: topic, Partitions: []kgo.FetchPartition{
		fetched(0, 31, 31).FetchPartition, // 11 to 30 deleted by retention
		fetched(1, 0, 14).FetchPartition,  // 11 to 13: a transaction's marker and aborted records
	}}}}}
	if err := cons.checkFetched(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(cons.cfg.Metrics.MessagesExpired); got != 20 {
		t.Errorf("counted %v expired, want 20", got)
	}
	b := store.Batch{Offsets: []store.PartitionOffset{{Topic: topic + "@x", Partition: 0, From: 31, Next: 32}, {Topic: topic + "@x", Partition: 1, From: 14, Next: 15}}}
	want := []store.ExpiredRange{{Topic: topic + "@x", Partition: 0, From: 11, To: 30}}
	if got := cons.expiredOf(&b); !slices.Equal(got, want) {
		t.Errorf("the batch records %+v, want %+v", got, want)
	}
	// Said once: the same stretch seen again is neither logged nor counted again.
	if err := cons.checkFetched(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(cons.cfg.Metrics.MessagesExpired); got != 20 {
		t.Errorf("counted %v expired after a second look, want 20", got)
	}
	b.Expired = cons.expiredOf(&b)
	cons.stored(&b)
	if got := cons.expiredOf(&b); len(got) != 0 {
		t.Errorf("a stored batch left %+v to record", got)
	}
}

// The dead-letter topic is deleted and created again under a running
// member: the letters recorded since are published to the new topic.
func TestARecreatedDeadLetterTopicGetsTheNextLetters(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 1)
	st := dbtest.NewStore(t)
	adm := c.admin(t)
	ctx := context.Background()
	c.produce(t, &kgo.Record{Value: []byte("not json 1")})
	cons, _ := member(t, c, st, "c1", io.Discard)
	eventually(t, "the first dead letter published", func() bool { return testutil.ToFloat64(cons.cfg.Metrics.DLQ) == 1 })

	if _, err := adm.DeleteTopic(ctx, dlqTopic); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, dlqTopic); err != nil {
		t.Fatal(err)
	}
	c.produce(t, &kgo.Record{Value: []byte("not json 2")})
	eventually(t, "the second dead letter published", func() bool { return testutil.ToFloat64(cons.cfg.Metrics.DLQ) == 2 })
	recs := c.read(t, dlqTopic, 1)
	if len(recs) != 1 || !strings.Contains(string(recs[0].Value), "not json 2") {
		t.Fatalf("the new dead-letter topic holds %d letters, want the second", len(recs))
	}
}
