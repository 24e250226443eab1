// Command roundtrip-floor measures what a Go process with nothing else to do
// spends on one round trip over loopback every 1/rate seconds: a timer, a
// write and a read, on one processor, as the pipeline's followers run. It is
// the floor under what a foodpipe process can cost per order at a low rate;
// c/floor.c is the same loop in C. See docs/PERFORMANCE.md, "Low rates".
//
//	go run . -serve 127.0.0.1:7999 &     # the echo server, a process of its own
//	GOMAXPROCS=1 go run . -rate 10 -d 10s -to 127.0.0.1:7999
//
// It is a module of its own, so that the pipeline's module and tests leave it out.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	serve := flag.String("serve", "", "serve as the echo server on this address")
	to := flag.String("to", "127.0.0.1:7999", "the echo server's address")
	rate := flag.Float64("rate", 10, "round trips a second")
	d := flag.Duration("d", 10*time.Second, "how long to measure")
	flag.Parse()
	if *serve != "" {
		echo(*serve)
		return
	}
	c, err := net.Dial("tcp", *to)
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 200)
	time.Sleep(time.Second)
	t0, w0, start := cpuTicks(), wakeups(), time.Now()
	for i := 0; time.Since(start) < *d; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / *rate * float64(time.Second)))))
		if _, err := c.Write(buf[:100]); err != nil {
			log.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			log.Fatal(err)
		}
	}
	s := time.Since(start).Seconds()
	// 100 ticks a second: ticks per second is % of a core.
	fmt.Printf("go %g round trips/s: %.2f %% of a core, %.0f wake-ups/s\n", *rate, float64(cpuTicks()-t0)/s, float64(wakeups()-w0)/s)
}

func echo(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			b := make([]byte, 200)
			for {
				n, err := c.Read(b)
				if err != nil {
					return
				}
				if _, err := c.Write(b[:n]); err != nil {
					return
				}
			}
		}()
	}
}

// cpuTicks is the process's user and system time, in ticks of 10 ms.
func cpuTicks() int64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		log.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// wakeups is the context switches of all the process's threads, as the
// bench counts them.
func wakeups() int64 {
	var n int64
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + t.Name() + "/status")
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(k, "voluntary_ctxt_switches") {
				x, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}
