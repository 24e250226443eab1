package lab_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"foodpipe/internal/cli"
	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/lab"
	"foodpipe/internal/store/dbtest"
)

// envRunAsCLI makes the test binary act as the foodpipe binary, which the
// lab starts as its broker and consumers through os.Executable.
const envRunAsCLI = "FOODPIPE_TEST_RUN_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(envRunAsCLI) == "1" {
		os.Exit(cli.Main(os.Args[1:], ""))
	}
	os.Exit(m.Run())
}

// sessionTimeout is the consumers' session in these tests: shorter than
// the default 10 s, so that a killed member's partitions move sooner.
const sessionTimeout = 6 * time.Second

// testLab is a running lab served on a loopback port.
type testLab struct {
	*lab.Lab
	URL string
}

// startLab starts a lab on a database of its own, with a child broker,
// consumers consumers and the producer at rate orders per second.
func startLab(t *testing.T, consumers int, rate float64) *testLab {
	t.Helper()
	return startLabOn(t, harness.ChildBroker, "", consumers, rate)
}

// startLabOn starts a lab with the broker mode given; brokers names the
// user's cluster for harness.ExternalBroker. settings are more variables,
// name then value ("CONSUMER_GROUP_PROTOCOL", "consumer").
func startLabOn(t *testing.T, mode harness.BrokerMode, brokers string, consumers int, rate float64, settings ...string) *testLab {
	t.Helper()
	if testing.Short() {
		t.Skip("a lab runs a broker and consumers as child processes: make test runs it")
	}
	t.Setenv(envRunAsCLI, "1")
	vars := map[string]string{"DATABASE_URL": dbtest.New(t), "KAFKA_PARTITIONS": "3", "LOG_LEVEL": "warn",
		"CONSUMER_SESSION_TIMEOUT": sessionTimeout.String()}
	if brokers != "" {
		vars["KAFKA_BROKERS"] = brokers
	}
	for i := 0; i+1 < len(settings); i += 2 {
		vars[settings[i]] = settings[i+1]
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Config: cfg, Broker: mode, UserDatabase: true,
		Consumers: consumers, Rate: rate, Tick: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: l.Handler(lab.Access{Addr: ln.Addr().String()}),
		ReadHeaderTimeout: 5 * time.Second}}
	srv.Start()
	t.Cleanup(func() {
		l.Close() // ends the event streams, so that the server can close
		srv.Close()
	})
	return &testLab{Lab: l, URL: srv.URL}
}

// post sends an action as the lab's page would, and returns the status
// and the body.
func (tl *testLab) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tl.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", tl.URL)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// must posts an action that must succeed.
func (tl *testLab) must(t *testing.T, path, body string) {
	t.Helper()
	if code, got := tl.post(t, path, body); code != http.StatusOK {
		t.Fatalf("POST %s %s = %d %s", path, body, code, got)
	}
}

// state reads the latest snapshot.
func (tl *testLab) state(t *testing.T) lab.Snapshot {
	t.Helper()
	resp, err := http.Get(tl.URL + "/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s lab.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("decode /state: %v", err)
	}
	return s
}

// ownedBy asks the member id itself, on its /metrics, which partitions it
// owns: the test's own reading, apart from the lab's.
func (tl *testLab) ownedBy(t *testing.T, id string) []int32 {
	t.Helper()
	p := tl.MemberProcess(id)
	if p == nil {
		t.Fatalf("%s has no process", id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fams, err := p.Metrics(ctx)
	if err != nil {
		t.Fatalf("ask %s what it owns: %v", id, err)
	}
	var owned []int32
	for _, m := range fams["foodpipe_partition_owned_since_seconds"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "partition" {
				n, err := strconv.Atoi(lp.GetValue())
				if err != nil {
					t.Fatalf("%s: partition %q", id, lp.GetValue())
				}
				owned = append(owned, int32(n))
			}
		}
	}
	slices.Sort(owned)
	return owned
}

// eventually polls the snapshot until ok holds, or fails after within.
func (tl *testLab) eventually(t *testing.T, within time.Duration, what string, ok func(lab.Snapshot) bool) lab.Snapshot {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := tl.state(t)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(s, "", " ")
			t.Fatalf("not within %v: %s\nlast snapshot: %.4000s", within, what, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
