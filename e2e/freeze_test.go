package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"foodpipe/internal/fault"
)

// processState is the state letter of a process (R, S, T for stopped ...).
func processState(t *testing.T, p *proc) string {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return ""
	}
	// pid (comm) state ...: comm may hold spaces, so split after its ')'.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return ""
}

// metricValue reads a metric from a process's /metrics, summed over its series; -1
// when the process does not answer or has no such metric.
func metricValue(addr, name string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	// The sum over the name's series: a group member's carry the label
	// group, and a labelled metric has one series per label value.
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if i := strings.LastIndexByte(rest, ' '); i >= 0 {
			if f, err := strconv.ParseFloat(rest[i+1:], 64); err == nil {
				sum, found = sum+f, true
			}
		}
	}
	if !found {
		return -1
	}
	return sum
}

// A member frozen (SIGSTOP: a paused VM, a swap storm) at each stage of a
// batch write: before its transaction, inside it with the partition's
// offsets row locked, and inside it with the rows written too. Its session
// expires and the other member takes its partitions; PostgreSQL ends the
// frozen transaction after 5 s idle, so its locks hold no one up. When it
// wakes, its late write is refused by the offset fence, and every order is
// in the table exactly once.
func TestAFrozenMemberHoldsNoOneUpAndItsLateWriteIsRefused(t *testing.T) {
	const sessionTimeout = 10 * time.Second
	for _, stage := range []string{"store.before-transaction", "store.after-offsets", "store.after-rows"} {
		t.Run(stage, func(t *testing.T) {
			p := newPipeline(t)
			metrics := freeAddr(t)
			zenv := append(append([]string{}, p.env...), fault.Env+"="+stage, "METRICS_ADDR="+metrics)
			zombie := start(t, "zombie", zenv, "consume", "--id", "zombie")
			eventually(t, 20*time.Second, "the first member to own every partition", func() bool {
				return groupMembers(t, p.addr)["zombie"] == 3
			})
			heir := start(t, "heir", p.env, "consume", "--id", "heir")
			eventually(t, 30*time.Second, "two members sharing the partitions", func() bool {
				m := groupMembers(t, p.addr)
				return m["zombie"] > 0 && m["heir"] > 0
			})
			watch := watchStalls(t, p)
			const orders = 4000
			producer := start(t, "producer", p.env, "produce", "--count", fmt.Sprint(orders), "--rate", "200")

			eventually(t, 30*time.Second, "the member to freeze at "+stage, func() bool { return processState(t, zombie) == "T" })
			frozeAt := time.Now()
			eventually(t, 60*time.Second, "the other member to own every partition", func() bool {
				return groupMembers(t, p.addr)["heir"] == 3
			})
			took := time.Since(frozeAt)
			// The heir stores on every partition, the one whose offsets row
			// the frozen transaction locked included, past the batch the
			// frozen member holds.
			before := storedByPartition(t, p.db)
			eventually(t, 30*time.Second, "the other member to store on every partition", func() bool {
				now := storedByPartition(t, p.db)
				for part := range int32(3) {
					if now[part] < before[part]+20 {
						return false
					}
				}
				return true
			})
			zombie.Signal(syscall.SIGCONT)
			resumedAt := time.Since(frozeAt)

			eventually(t, 60*time.Second, "the woken member's late batch to be refused by the fence", func() bool {
				return metricValue(metrics, "foodpipe_fenced_batches_total") >= 1
			})
			if code := producer.wait(time.Minute); code != 0 {
				t.Fatalf("producer exited %d", code)
			}
			p.checkEveryOrderOnce(t, orders)
			watch.Close()
			longest := watch.Longest().Took
			lp := watch.LongestPartition()
			part, partLongest := lp.Partition, lp.Took
			t.Logf("frozen at %s: the other member owned every partition after %.1fs; resumed after %.1fs; "+
				"longest stall of the pipeline %.1fs, of one partition %.1fs (partition %d)",
				stage, took.Seconds(), resumedAt.Seconds(), longest.Seconds(), partLongest.Seconds(), part)
			// A frozen member holds its partitions for its session timeout,
			// and the rebalance that moves them takes a few seconds more; its
			// transaction holds nothing longer, since PostgreSQL ends it
			// after 5 s idle.
			if bound := sessionTimeout + 10*time.Second; partLongest > bound {
				t.Errorf("a partition stalled for %.1fs, more than %v", partLongest.Seconds(), bound)
			}
			for _, c := range []*proc{zombie, heir} {
				if code, took := c.stop(syscall.SIGTERM, 15*time.Second); code != 0 {
					t.Errorf("%s: SIGTERM exit %d after %v", c.Name, code, took)
				}
			}
		})
	}
}

// storedByPartition counts the stored orders of each partition.
func storedByPartition(t *testing.T, url string) map[int32]int {
	t.Helper()
	out := map[int32]int{}
	withConn(t, url, func(ctx context.Context, conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, "SELECT kafka_partition, count(*)::int FROM orders GROUP BY 1")
		if err != nil {
			return err
		}
		var part int32
		var n int
		_, err = pgx.ForEachRow(rows, []any{&part, &n}, func() error { out[part] = n; return nil })
		return err
	})
	return out
}
