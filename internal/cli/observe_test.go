package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/kafka"
	"foodpipe/internal/report"
	"foodpipe/internal/store/dbtest"
)

// scrape returns the value of one sample of a /metrics page, or -1 when absent.
func scrape(page, sample string) float64 {
	for _, l := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startConsume runs `foodpipe consume` until the test ends and returns its run.
func startConsume(t *testing.T, vars []string, args ...string) *run {
	t.Helper()
	c := newRun(t, vars...)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.do(ctx, append([]string{"consume"}, args...)...) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("consume: %v", err)
		}
	})
	return c
}

var metricsAddr = regexp.MustCompile(`"msg":"serving metrics and health","addr":"([^"]+)"`)

func TestConsumeServesMetricsWithTheValuesOfAKnownRun(t *testing.T) {
	addr := broker(t)
	url := dbtest.New(t)
	vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", url, "KAFKA_PARTITIONS", "1", "METRICS_ADDR", "127.0.0.1:0"}
	ctx := context.Background()
	migrate(t, url)
	if err := newRun(t, vars...).do(ctx, "produce", "--count", "10", "--rate", "0"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("food-orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("not json")}, &kgo.Record{Value: []byte(`{"order_id":"X"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	resend(t, addr, "food-orders", 4) // four exact re-deliveries

	c := startConsume(t, vars, "--id", "m1")
	var base string
	var page string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := metricsAddr.FindStringSubmatch(c.stderr.String()); m != nil && base == "" {
			base = "http://" + m[1]
		}
		if base != "" {
			_, page = httpGet(t, base+"/metrics")
			// Dead letters are published a moment after the batch that
			// recorded them.
			if scrape(page, `foodpipe_orders_duplicate_total{group="order-processors"}`) == 4 && scrape(page, `foodpipe_dlq_total{group="order-processors"}`) == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed the run:\n%s\n%s", page, tail(c.stderr.String(), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every foodpipe_ metric of a member carries its group: the analytics
	// group's members export the same names.
	for sample, want := range map[string]float64{
		`foodpipe_orders_processed_total{group="order-processors"}`:                                     10,
		`foodpipe_orders_duplicate_total{group="order-processors"}`:                                     4,
		`foodpipe_orders_invalid_total{group="order-processors",reason="not_json"}`:                     1,
		`foodpipe_orders_invalid_total{group="order-processors",reason="missing_field"}`:                1,
		`foodpipe_dlq_total{group="order-processors"}`:                                                  2,
		`foodpipe_e2e_latency_seconds_count{group="order-processors"}`:                                  10,
		`foodpipe_consumer_lag{group="order-processors",partition="0"}`:                                 0,
		`foodpipe_db_breaker_open{group="order-processors"}`:                                            0,
		`foodpipe_rebalances_total{group="order-processors"}`:                                           1,
		`foodpipe_build_info{goversion="` + runtime.Version() + `",revision="unknown",version="devel"}`: 1,
	} {
		if got := scrape(page, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
	if n := scrape(page, `foodpipe_db_batch_seconds_count{group="order-processors"}`); n < 1 {
		t.Errorf("foodpipe_db_batch_seconds_count = %v, want at least 1", n)
	}
	if !strings.Contains(page, `foodpipe_kafka_connects_total{client_id="foodpipe-m1"`) {
		t.Errorf("the Kafka client's own metrics are missing")
	}
	if code, body := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}
}

func TestStatusShowsPartitionsMembersLagAndRows(t *testing.T) {
	addr := broker(t)
	url := dbtest.New(t)
	vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", url}
	ctx := context.Background()
	migrate(t, url)
	if err := newRun(t, vars...).do(ctx, "produce", "--count", "30", "--rate", "0"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("food-orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("garbage")}, &kgo.Record{Value: []byte("more garbage")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c := startConsume(t, vars, "--id", "watcher")

	// Once everything is stored and committed, status must show it all. (Kafka
	// hears of what was stored within a second: until then status shows
	// the lag from the database's offsets, and the committed ones behind.)
	var s report.Status
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := newRun(t, vars...)
		if err := r.do(ctx, "status", "--json"); err != nil {
			t.Fatalf("status: %v\n%s", err, r.stderr)
		}
		s = report.Status{}
		if err := json.Unmarshal([]byte(r.stdout.String()), &s); err != nil {
			t.Fatalf("status --json: %v\n%s", err, r.stdout)
		}
		var lag, uncommitted int64
		for _, p := range s.Partitions {
			lag += p.Lag
			uncommitted += p.HighWatermark - p.Committed
		}
		if len(s.Partitions) == 3 && lag == 0 && uncommitted == 0 && s.DLQSize == 2 && len(s.Members) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never settled: %+v\n%s", s, tail(c.stderr.String(), 2000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, rows := countRows(t, url)
	var hwm, stored int64
	for _, p := range s.Partitions {
		hwm += p.HighWatermark
		stored += p.Rows
		if p.Committed != p.HighWatermark {
			t.Errorf("partition %d committed %d, high watermark %d", p.Partition, p.Committed, p.HighWatermark)
		}
		if p.Rows != int64(rows[p.Partition]) {
			t.Errorf("partition %d rows %d, the table has %d", p.Partition, p.Rows, rows[p.Partition])
		}
		if p.Owner != "foodpipe-watcher" {
			t.Errorf("partition %d owner %q, want foodpipe-watcher", p.Partition, p.Owner)
		}
		// The committer is named in the commit, for status to show during a rebalance.
		if p.LastCommitter != "foodpipe-watcher" {
			t.Errorf("partition %d last committed by %q, want foodpipe-watcher", p.Partition, p.LastCommitter)
		}
	}
	if s.TotalLag != 0 {
		t.Errorf("total lag %d with every partition's lag 0", s.TotalLag)
	}
	if hwm != 32 || stored != 30 {
		t.Errorf("high watermarks sum to %d (want 32 messages), rows to %d (want 30 orders)", hwm, stored)
	}
	if m := s.Members[0]; m.ClientID != "foodpipe-watcher" || len(m.Partitions) != 3 {
		t.Errorf("member %+v, want foodpipe-watcher owning the 3 partitions", m)
	}
	if s.GroupState != "Stable" {
		t.Errorf("group state %q", s.GroupState)
	}
	// The analytics and notifications groups read the same topic at their
	// own pace: none of their members ran, so each has all 32 messages
	// still to read.
	if len(s.OtherGroups) != 2 {
		t.Errorf("other groups %+v, want order-analytics and order-notifications", s.OtherGroups)
	}
	for i, name := range []string{"order-analytics", "order-notifications"} {
		if i < len(s.OtherGroups) && (s.OtherGroups[i].Group != name || s.OtherGroups[i].TotalLag != 32 || s.OtherGroups[i].Members != 0) {
			t.Errorf("other group %+v, want %s with no member and lag 32", s.OtherGroups[i], name)
		}
	}

	// The table a person reads says the same.
	r := newRun(t, vars...)
	if err := r.do(ctx, "status"); err != nil {
		t.Fatal(err)
	}
	out := r.stdout.String()
	for _, want := range []string{"topic food-orders: 3 partitions", "group order-processors: Stable, 1 member ",
		"dead letters in food-orders.dlq: 2", "PARTITION  HIGH WATERMARK  COMMITTED  LAG  ROWS IN DB  OWNER", "foodpipe-watcher",
		"also reading food-orders: group order-analytics", "group order-notifications", "total lag 32"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}

func TestStatusWithoutTheDatabaseStillShowsKafka(t *testing.T) {
	addr := broker(t)
	vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}
	ctx := context.Background()
	if err := newRun(t, vars...).do(ctx, "produce", "--count", "6", "--rate", "0"); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, vars...)
	if err := r.do(ctx, "status"); err != nil {
		t.Fatal(err)
	}
	out := r.stdout.String()
	if !strings.Contains(out, "rows in PostgreSQL unknown") || !strings.Contains(out, "(no consumer running), 0 members") {
		t.Errorf("status output:\n%s", out)
	}
	// Nobody has consumed: the lag is every message.
	re := regexp.MustCompile(`(?m)^(\d)\s+(\d+)\s+-\s+(\d+)\s+-\s+-$`)
	var lag int
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		if m[2] != m[3] {
			t.Errorf("partition %s: lag %s, high watermark %s", m[1], m[3], m[2])
		}
		n, _ := strconv.Atoi(m[3])
		lag += n
	}
	if lag != 6 || !strings.Contains(out, "total lag 6 ") {
		t.Errorf("total lag %d, want 6 and a line saying so:\n%s", lag, out)
	}
}

func TestStatusWatchPrintsPlainSnapshotsWhenNotATerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	addr := broker(t)
	vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", dbtest.New(t)}
	if err := newRun(t, vars...).do(context.Background(), "topic", "create"); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, vars...)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := r.do(ctx, "status", "--watch", "--interval", "200ms"); err != nil {
		t.Fatal(err)
	}
	out := r.stdout.String()
	if n := strings.Count(out, "PARTITION  HIGH WATERMARK"); n < 3 {
		t.Errorf("%d snapshots in 1.5 s at 200 ms, want several:\n%s", n, out)
	}
	if strings.Contains(out, "\033") {
		t.Errorf("terminal escapes written to a non-terminal:\n%q", out)
	}
}

// status --watch on a terminal, its broker gone: the view says so in its
// own words and keeps trying. The Kafka client's own log lines stay off the
// terminal when the log goes there too; a log sent elsewhere has them.
func TestStatusWatchSaysTheBrokerIsUnreachableWithoutTheClientsLog(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	for _, tt := range []struct {
		name       string
		logOnTTY   bool // stderr, where the log goes, is the same terminal
		clientLogs bool // franz-go's lines are in the log
	}{
		{"the log on the same terminal", true, false},
		{"the log sent elsewhere", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := kafka.StartBroker(kafka.BrokerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			addr := b.Addr() // asked before the broker is closed: a closed one answers no more
			vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", dbtest.New(t)}
			if err := newRun(t, vars...).do(context.Background(), "topic", "create"); err != nil {
				t.Fatal(err)
			}
			r := newRun(t, vars...)
			r.env.Terminal = func(w io.Writer) bool { return w == r.env.Stdout || tt.logOnTTY && w == r.env.Stderr }
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.do(ctx, "status", "--watch", "--interval", "200ms") }()
			waitFor := func(what, text string) bool {
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if strings.Contains(r.stdout.String(), text) {
						return true
					}
				}
				t.Errorf("the view never showed %s (%q):\n%s", what, text, tail(r.stdout.String(), 2000))
				return false
			}
			if !waitFor("the partitions", "PARTITION  HIGH WATERMARK") {
				stop()
				<-done
				return
			}
			b.Close()
			waitFor("the broker unreachable", "Kafka broker unreachable at "+addr)
			stop()
			if err := <-done; err != nil {
				t.Errorf("status --watch ended with %v", err)
			}
			if got := strings.Contains(r.stderr.String(), `"component":"kgo"`); got != tt.clientLogs {
				t.Errorf("the Kafka client's own lines in the log: %v, want %v:\n%s", got, tt.clientLogs, tail(r.stderr.String(), 2000))
			}
		})
	}
}

func TestDemoShowsTheRebalanceWhenAConsumerLeaves(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	url := dbtest.New(t)
	r := newRun(t, "DATABASE_URL", url)
	err := r.do(context.Background(), "demo", "--orders", "60", "--rate", "40", "--consumers", "3", "--stop-one-after", "20")
	if err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, r.stdout, tail(r.stderr.String(), 2000))
	}
	out := r.stdout.String()
	if strings.Contains(out, "\033") {
		t.Errorf("terminal escapes written to a non-terminal:\n%q", out)
	}
	if !strings.Contains(out, "progress produced") || !regexp.MustCompile(`p0 \d+/\d+  p1 \d+/\d+  p2 \d+/\d+`).MatchString(out) {
		t.Errorf("no per-partition progress lines:\n%s", out)
	}
	if !strings.Contains(out, "consumer-3 leaves the group (--stop-one-after 20)") {
		t.Errorf("the stop is not shown:\n%s", out)
	}
	if !regexp.MustCompile(`rebalance: consumer-3 owned \[\d\], now owns \[\]`).MatchString(out) {
		t.Errorf("consumer-3 giving up its partition is not shown:\n%s", out)
	}
	// Its partition moves to one of the two that stay.
	if !regexp.MustCompile(`rebalance: consumer-[12] owned \[\d\], now owns \[\d \d\]`).MatchString(out) {
		t.Errorf("no remaining consumer is shown taking over a partition:\n%s", out)
	}
	if !strings.Contains(out, "consumer-3 stopped") || !strings.Contains(out, "every produced order is in PostgreSQL exactly once") {
		t.Errorf("summary:\n%s", out)
	}
	if total, _ := countRows(t, url); total != 60 {
		t.Errorf("%d rows, want 60", total)
	}
}

// Status tells what Kafka did beyond the group's reach: a transaction still
// open holds a partition at its last stable offset; offsets Kafka deleted
// before the group read them are shown as expired, recorded or not, and do
// not count as lag; offsets the database holds of an earlier incarnation of
// the topic are named.
func TestStatusShowsOpenTransactionsExpiredOffsetsAndAnEarlierTopic(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	addr := broker(t)
	url := dbtest.New(t)
	vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", url}
	ctx := context.Background()
	migrate(t, url)
	if err := newRun(t, vars...).do(ctx, "topic", "create"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("food-orders"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("another-app"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// A transaction of ten messages on each partition, committed, then one
	// left open on partition 1.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		for range 10 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("open")}, &kgo.Record{Partition: 1, Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx, "food-orders")
	if err != nil {
		t.Fatal(err)
	}
	scope := "food-orders@" + topics["food-orders"].ID.String()
	// Partition 0: the group stored up to offset 2, then Kafka deleted
	// offsets below 6; it had recorded 0-1 of an earlier loss. Partition 2:
	// stored only for an earlier incarnation of the topic.
	ends, err := adm.ListEndOffsets(ctx, "food-orders")
	if err != nil {
		t.Fatal(err)
	}
	end0, _ := ends.Lookup("food-orders", 0)
	withConn(t, url, `INSERT INTO consumer_offsets (group_id, topic, kafka_partition, next_offset) VALUES
		('order-processors', $1, 0, 2), ('order-processors', 'food-orders@AAAAAAAAAAAAAAAAAAAAAA', 2, 7)`, scope)
	withConn(t, url, `INSERT INTO expired_offsets (group_id, topic, kafka_partition, from_offset, to_offset) VALUES
		('order-processors', $1, 0, 0, 1)`, scope)
	del, err := adm.DeleteRecords(ctx, kadm.Offsets{"food-orders": {0: {Topic: "food-orders", Partition: 0, At: 6}}})
	if err == nil {
		err = del.Error()
	}
	if err != nil {
		t.Fatal(err)
	}

	r := newRun(t, vars...)
	if err := r.do(ctx, "status", "--json"); err != nil {
		t.Fatalf("status: %v\n%s", err, r.stderr)
	}
	var s report.Status
	if err := json.Unmarshal([]byte(r.stdout.String()), &s); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	p0, p1, p2 := s.Partitions[0], s.Partitions[1], s.Partitions[2]
	if want := []report.ExpiredStatus{{From: 0, To: 1, Recorded: true}, {From: 2, To: 5}}; !slices.Equal(p0.Expired, want) {
		t.Errorf("partition 0 expired %+v, want %+v", p0.Expired, want)
	}
	if p0.Stored != 2 || p0.LogStart != 6 || p0.Lag != end0.Offset-6 {
		t.Errorf("partition 0 %+v: want stored 2, log start 6, lag %d (from the log start: what expired is no lag)", p0, end0.Offset-6)
	}
	if p1.LastStable >= p1.HighWatermark || p1.HighWatermark-p1.LastStable != 2 || p1.Lag != p1.LastStable {
		t.Errorf("partition 1 %+v: want the open transaction's 2 messages between the last stable offset and the high watermark, lag up to the former", p1)
	}
	if p2.Stored != -1 || p2.Lag != p2.HighWatermark || len(p2.Expired) != 0 {
		t.Errorf("partition 2 %+v: want no stored offset in this topic and everything to read", p2)
	}
	if !slices.Equal(s.EarlierTopics, []string{"food-orders@AAAAAAAAAAAAAAAAAAAAAA"}) || s.TopicID != topics["food-orders"].ID.String() {
		t.Errorf("earlier topics %v, topic id %s", s.EarlierTopics, s.TopicID)
	}

	r = newRun(t, vars...)
	if err := r.do(ctx, "status"); err != nil {
		t.Fatal(err)
	}
	out := r.stdout.String()
	for _, want := range []string{
		"partition 0: offsets 2-5 (4 messages) EXPIRED before group order-processors read them",
		"partition 0: offsets 0-1 (2 messages) EXPIRED",
		"partition 1: a transaction is open from offset",
		"another topic of this name (deleted and created again, or on another cluster",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
}

func withConn(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// foodpipe exporter serves the groups' lag from the broker with no consumer
// and no database: nobody has read the six orders, so each group lags by six.
// Without an address to serve on it refuses to start, saying which variable.
func TestExporterServesTheGroupsLagWithNoConsumerRunning(t *testing.T) {
	addr := broker(t)
	ctx := context.Background()
	vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}
	if err := newRun(t, vars...).do(ctx, "produce", "--count", "6", "--rate", "0"); err != nil {
		t.Fatal(err)
	}
	if err := newRun(t, vars...).do(ctx, "exporter"); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "METRICS_ADDR") {
		t.Errorf("exporter without METRICS_ADDR: %v, want a usage error naming it", err)
	}

	file := filepath.Join(t.TempDir(), "addr")
	r := newRun(t, append(vars, "METRICS_ADDR", "127.0.0.1:0", "METRICS_ADDR_FILE", file)...)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.do(rctx, "exporter") }()
	var served string
	deadline := time.Now().Add(10 * time.Second)
	for served == "" {
		if time.Now().After(deadline) {
			t.Fatalf("the exporter did not serve its address:\n%s", r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
		b, _ := os.ReadFile(file)
		served = strings.TrimSpace(string(b))
	}
	resp, err := http.Get("http://" + served + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lag := map[string]int{}
	re := regexp.MustCompile(`(?m)^foodpipe_group_lag\{component="[a-z]+",group="([^"]+)",partition="\d",topic="food-orders"\} (\d+)$`)
	for _, m := range re.FindAllStringSubmatch(string(body), -1) {
		n, _ := strconv.Atoi(m[2])
		lag[m[1]] += n
	}
	for _, g := range []string{"order-processors", "order-analytics", "order-notifications"} {
		if lag[g] != 6 {
			t.Errorf("group %s: lag %d, want 6\n%s", g, lag[g], body)
		}
	}
	if !strings.Contains(string(body), "foodpipe_build_info{") {
		t.Errorf("no foodpipe_build_info in:\n%s", body)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
