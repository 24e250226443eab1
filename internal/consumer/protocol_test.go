package consumer

import (
	"context"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/kafka"
	"foodpipe/internal/store/dbtest"
)

// embeddedCluster is foodpipe's embedded broker, as `foodpipe broker` starts
// it, with the orders topic of three partitions and the dead-letter topic:
// KIP-848's group session timeout is the broker's.
func embeddedCluster(t *testing.T, session time.Duration) *cluster {
	t.Helper()
	b, err := kafka.StartBroker(kafka.BrokerOptions{GroupSessionTimeout: session})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for name, parts := range map[string]int32{topic: 3, dlqTopic: 1} {
		if _, err := adm.CreateTopic(context.Background(), parts, 1, nil, name); err != nil {
			t.Fatal(err)
		}
	}
	return &cluster{addr: b.Addr()}
}

// Under either group protocol two static members share the partitions and
// store every order once; one stopped on purpose leaves for good, so the
// other takes its partitions at once rather than after the session timeout.
// Under KIP-848 the broker assigns, and the leave for good is a heartbeat
// with epoch -1: a static member's client closes with epoch -2, which keeps
// its partitions for it until its session times out.
func TestTwoStaticMembersShareThePartitionsAndHandThemOverWhenOneStops(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	for _, protocol := range config.GroupProtocols {
		t.Run(protocol, func(t *testing.T) { shareAndHandOver(t, protocol) })
	}
}

func shareAndHandOver(t *testing.T, protocol string) {
	const session = 10 * time.Second
	c := embeddedCluster(t, session)
	st := dbtest.NewStore(t)
	c.produceRoundRobin(t, 21, 300)

	var mu sync.Mutex
	owned := map[string][]int32{}
	start := func(id string) (*Consumer, context.CancelFunc) {
		return memberWith(t, c, st, id, io.Discard, func(cfg *Config) {
			cfg.GroupProtocol, cfg.InstanceID, cfg.SessionTimeout = protocol, id, session
			cfg.Observe = func(e Event) {
				if a, ok := e.(Assigned); ok {
					mu.Lock()
					owned[a.Member] = a.Owned
					mu.Unlock()
				}
			}
		})
	}
	shared := func() bool {
		mu.Lock()
		defer mu.Unlock()
		all := append(slices.Clone(owned["c1"]), owned["c2"]...)
		slices.Sort(all)
		return len(owned["c1"]) > 0 && len(owned["c2"]) > 0 && slices.Equal(all, []int32{0, 1, 2})
	}
	c1, _ := start("c1")
	eventually(t, "c1 to store the orders", func() bool { return count(t, st) == 300 })
	c2, stop2 := start("c2")
	eventually(t, "the broker to share the partitions between c1 and c2", shared)
	c.produceRoundRobin(t, 22, 300)
	eventually(t, "every order stored", func() bool { return count(t, st) == 600 })

	stopped := time.Now()
	stop2()
	eventually(t, "c1 to own every partition", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(owned["c1"], []int32{0, 1, 2})
	})
	if took := time.Since(stopped); took >= session/2 {
		t.Errorf("c1 took the partitions %v after c2 stopped: c2 did not leave for good, its session of %v ran out", took, session)
	}
	t.Logf("%s protocol: c1 owns every partition %v after c2 was told to stop", protocol, time.Since(stopped).Round(time.Millisecond))
	c.produceRoundRobin(t, 23, 300)
	eventually(t, "every order stored", func() bool { return count(t, st) == 900 })
	awaitCounted(t, func() bool { return c1.Stats().Processed+c2.Stats().Processed >= 900 })
	s1, s2 := c1.Stats(), c2.Stats()
	if s1.Processed+s2.Processed != 900 || s1.Duplicates+s2.Duplicates != 0 || s2.Processed == 0 {
		t.Errorf("c1 %+v and c2 %+v, want 900 orders stored between them, each once, some by each", s1, s2)
	}
}
