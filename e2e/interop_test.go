package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"foodpipe/internal/order"
)

// kcat is librdkafka, the C client most Kafka tools are built on. An order
// it publishes with `kcat -P` is stored by foodpipe, and what foodpipe
// produces and dead-letters reads back with `kcat -C`: foodpipe's broker and
// clients speak Kafka, not something Kafka-shaped.
func TestKcatInteroperatesWithTheBrokerProducerAndConsumer(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatalf("kcat is needed for this test (Debian: apt-get install kcat; .ci/run installs it): %v", err)
	}
	p := newPipeline(t)
	c := p.consumer(t, "c1")

	o := order.NewGenerator(42, nil).Next()
	// key|value lines: the customer id is the key, as foodpipe's producer does it.
	input := o.CustomerID + "|" + string(o.AppendJSON(nil)) + "\n" + "some-key|this is not an order\n"
	kcat := func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "kcat", append([]string{"-b", p.addr}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	kcat(input, "-P", "-t", "food-orders", "-K", "|", "-X", "enable.idempotence=true")
	eventually(t, 30*time.Second, "the order published by kcat to be stored", func() bool { return storedCount(t, p.db) == 1 })
	if got := query[string](t, p.db, "SELECT order_id FROM orders"); got != o.OrderID {
		t.Errorf("stored %q, want %q", got, o.OrderID)
	}

	// The dead letter, read by kcat with its headers.
	dead := kcat("", "-C", "-t", "food-orders.dlq", "-c", "1", "-e", "-f", "%h|%s\n")
	if !strings.Contains(dead, "dlq.reason=not_json") || !strings.Contains(dead, "|this is not an order") {
		t.Errorf("kcat read the dead letter as %q", dead)
	}

	// Orders from foodpipe's producer, read by kcat, keyed by customer.
	if code := start(t, "producer", p.env, "produce", "--count", "5", "--rate", "0").wait(30 * time.Second); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	read := kcat("", "-C", "-t", "food-orders", "-o", "beginning", "-c", "7", "-e", "-f", "%k\t%s\n")
	lines := strings.Split(strings.TrimSpace(read), "\n")
	if len(lines) != 7 {
		t.Fatalf("kcat read %d messages, want 7:\n%s", len(lines), read)
	}
	valid := 0
	for _, l := range lines {
		key, value, _ := strings.Cut(l, "\t")
		got, err := order.Decode([]byte(value))
		if err != nil {
			if value != "this is not an order" {
				t.Errorf("kcat read %q: %v", value, err)
			}
			continue
		}
		valid++
		if got.CustomerID != key {
			t.Errorf("order of %s has key %q", got.CustomerID, key)
		}
	}
	if valid != 6 {
		t.Errorf("kcat read %d valid orders, want 6", valid)
	}
	if code, _ := c.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("consumer exit %d", code)
	}
}
