package e2e

import (
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cutProxy forwards TCP connections to a target until it is cut: then it
// drops every open connection and closes each new one at once, as a network
// partition or a restarting database looks to a client.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// Cut the consumer's database for 30 s while orders flow: it opens its
// circuit breaker, stops taking records, stays up, and resumes by itself when
// the database is back. Nothing is lost; nothing valid goes to the DLQ.
func TestADatabaseOutageIsRiddenOut(t *testing.T) {
	p := newPipeline(t)
	proxy := newCutProxy(t, "127.0.0.1:5432")
	viaProxy := append([]string{}, p.env...)
	viaProxy[1] = "DATABASE_URL=" + strings.Replace(p.db, "127.0.0.1:5432", proxy.addr(), 1)

	const orders = 4000
	metrics := freeAddr(t)
	c := start(t, "consumer", append(viaProxy, "METRICS_ADDR="+metrics), "consume", "--id", "c1")
	producer := start(t, "producer", p.env, "produce", "--count", "4000", "--rate", "100")
	eventually(t, 20*time.Second, "the first orders to be stored", func() bool { return storedCount(t, p.db) > 0 })

	proxy.setCut(true)
	cutAt := time.Now()
	eventually(t, 20*time.Second, "the circuit breaker to open", func() bool {
		return metricValue(metrics, "foodpipe_db_breaker_open") == 1
	})
	// While the database is away the consumer stays up and stores nothing.
	during := storedCount(t, p.db)
	time.Sleep(30*time.Second - time.Since(cutAt))
	if c.exited() {
		t.Fatalf("the consumer exited during the outage")
	}
	if n := storedCount(t, p.db); n != during {
		t.Errorf("rows went from %d to %d while the database was cut off", during, n)
	}
	proxy.setCut(false)
	eventually(t, 30*time.Second, "the circuit breaker to close", func() bool {
		return metricValue(metrics, "foodpipe_db_breaker_open") == 0
	})
	if code := producer.wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	p.checkEveryOrderOnce(t, orders)
	if code, took := c.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("consumer SIGTERM exit %d after %v", code, took)
	}
}
