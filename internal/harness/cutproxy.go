package harness

// A TCP proxy that can cut the line, so that a database outage can be made
// on purpose: by the lab's "cut the database" button and by the e2e tests.

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// CutProxy forwards TCP connections to a target until it is cut: then it
// drops every open connection and closes each new one at once, as a network
// partition or a restarting database looks to a client. Mending it lets new
// connections through again.
type CutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	closed bool
	conns  map[net.Conn]struct{}
}

// NewCutProxy listens on a free 127.0.0.1 port and forwards to target.
// Close it when done.
func NewCutProxy(target string) (*CutProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cut proxy: %w", err)
	}
	p := &CutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// Addr is where clients connect instead of the target.
func (p *CutProxy) Addr() string { return p.ln.Addr().String() }

// Target is where the proxy forwards to.
func (p *CutProxy) Target() string { return p.target }

// Cut drops every open connection and refuses new ones until Mend.
func (p *CutProxy) Cut() { p.set(true) }

// Mend lets new connections through again.
func (p *CutProxy) Mend() { p.set(false) }

// IsCut reports whether the line is cut now.
func (p *CutProxy) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// Close stops listening and drops every connection.
func (p *CutProxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close() // the accept loop ends with it; nothing else to report
	p.set(true)
}

func (p *CutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut || p.closed {
			p.mu.Unlock()
			_ = c.Close() // refused on purpose: the line is cut
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close() // the target is away: the client sees what it would see without the proxy
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *CutProxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src) // it ends when either side closes, which is how a connection ends here
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *CutProxy) set(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close() // dropped on purpose
		}
	}
}
