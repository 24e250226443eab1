package consumer

import (
	"context"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"foodpipe/internal/store/dbtest"
)

// countCommits counts the offset commits the cluster receives from now on.
func countCommits(c *cluster) *atomic.Int64 {
	var n atomic.Int64
	c.ControlKey(int16(kmsg.OffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		n.Add(1)
		return nil, nil, false
	})
	return &n
}

// committed is the group's committed offset of partition 0 (-1 for none).
func committed(t *testing.T, c *cluster) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok {
		return -1
	}
	return o.At
}

// Orders that come one at a time are stored batch after batch, and Kafka
// hears of them about once a second, not once a batch; once the topic goes
// quiet its committed offset reaches the last stored order all the same.
func TestKafkaHearsOfStoredOrdersOnceASecondNotOnceABatch(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 1)
	st := dbtest.NewStore(t)
	commits := countCommits(c)
	counting := &countingStore{Store: st}
	member(t, c, counting, "c1", io.Discard)

	const n = 30
	_, recs := orders(31, n)
	start := time.Now()
	for i, r := range recs {
		c.produce(t, r)
		eventually(t, "the order stored", func() bool { return count(t, st) == int64(i+1) })
	}
	stored := time.Since(start)
	eventually(t, "Kafka's committed offset to reach the last order", func() bool { return committed(t, c) == n })

	counting.mu.Lock()
	batches := len(counting.batches)
	counting.mu.Unlock()
	if batches < n {
		t.Fatalf("%d batches for %d orders produced one at a time, want one each", batches, n)
	}
	// One commit per commitEvery while orders flow, and the last one after.
	if got, most := commits.Load(), int64(stored/commitEvery)+2; got > most {
		t.Errorf("%d commits for %d batches over %v, want at most %d", got, batches, stored.Round(time.Millisecond), most)
	}
}

// A member that stops commits what it stored before it goes, without
// waiting for the next commit's turn.
func TestAStoppingMemberCommitsWhatItStored(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 1)
	st := dbtest.NewStore(t)
	_, recs := orders(32, 5)
	c.produce(t, recs...)
	commits := countCommits(c)
	_, stop := member(t, c, st, "c1", io.Discard)
	eventually(t, "the orders stored", func() bool { return count(t, st) == 5 })
	before := commits.Load()
	stop()
	if before != 0 {
		t.Logf("a commit came before the stop (a slow machine): %d", before)
	}
	if got := committed(t, c); got != 5 {
		t.Errorf("committed offset %d after the stop, want 5", got)
	}
}

// A member killed after its batch's transaction and before its Kafka commit
// leaves the database's offset ahead of Kafka's. The member that takes the
// partition next resumes from the database and commits that offset to
// Kafka at once, even though no order comes after: otherwise status and
// the lag would show orders long stored as still to read.
func TestAMemberTakingAPartitionCommitsTheDatabasesOffsetAheadOfKafkas(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 1)
	st := dbtest.NewStore(t)
	_, recs := orders(33, 5)
	c.produce(t, recs...)
	_, stop := member(t, c, st, "c1", io.Discard)
	eventually(t, "the orders stored", func() bool { return count(t, st) == 5 })
	stop()

	// What the killed member's missing commit leaves: Kafka two behind.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var back kadm.Offsets
	back.Add(kadm.Offset{Topic: topic, Partition: 0, At: 3, LeaderEpoch: -1})
	if err := kadm.NewClient(cl).CommitAllOffsets(context.Background(), group, back); err != nil {
		t.Fatal(err)
	}
	if got := committed(t, c); got != 3 {
		t.Fatalf("committed offset %d after moving it back, want 3", got)
	}

	member(t, c, st, "c2", io.Discard)
	eventually(t, "Kafka's committed offset to reach the database's", func() bool { return committed(t, c) == 5 })
	if n := count(t, st); n != 5 {
		t.Errorf("%d orders stored, want 5", n)
	}
}

// A marker is committed past only when the data before it in the poll was
// stored: behind a fenced batch it waits to be fetched again with it.
// (splitMarkers is tested with real markers, from a transactional producer,
// in TestOnlyCommittedTransactionsAreStoredAndCounted.)
func TestMarkersAreCommittedPastOnlyBehindStoredRecords(t *testing.T) {
	rec := func(p int32, o int64) *kgo.Record { return &kgo.Record{Partition: p, Offset: o} }
	d0, m0 := rec(0, 4), rec(0, 5) // stored, then its marker
	d1, m1 := rec(1, 7), rec(1, 8) // fenced, then its marker
	m2 := rec(2, 3)                // a marker alone
	d3a, m3, d3b := rec(3, 1), rec(3, 2), rec(3, 3)
	recs, markers := []*kgo.Record{d0, d1, d3a, d3b}, []*kgo.Record{m0, m1, m2, m3}
	got := markersPast(markers, recs, []*kgo.Record{d0, d3a, d3b})
	if want := []*kgo.Record{m0, m2, m3}; !slices.Equal(got, want) {
		t.Errorf("markers past: %v, want %v", got, want)
	}
	if got := markersPast(markers, recs, nil); !slices.Equal(got, []*kgo.Record{m2}) {
		t.Errorf("markers past with nothing stored: %v, want only the one alone", got)
	}
}
