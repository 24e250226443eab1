// Package kafka is foodpipe's one place for Kafka plumbing: the base options
// every franz-go client is built from, topic administration, and the embedded
// Kafka-protocol broker (franz-go's kfake) behind `foodpipe broker` and the demo.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"
)

// Options are the connection settings shared by producer, consumer and admin clients.
type Options struct {
	Brokers  []string
	ClientID string
	Logger   *slog.Logger

	// TLS encrypts every connection; TLSCA (PEM) replaces the system's CA
	// certificates when set, for a private CA such as Strimzi's.
	TLS   bool
	TLSCA []byte
	// SASL authenticates every connection; a zero SASL means none.
	SASL SASL
}

// ErrUnreachable means no broker answered within the retry budget.
var ErrUnreachable = errors.New("no Kafka broker reachable")

// Unreachable reports whether err says a broker could not be reached: a
// connection refused, timed out or cut (a *net.OpError, which franz-go's
// errors wrap), or ErrUnreachable from Ping.
func Unreachable(err error) bool {
	_, dial := errors.AsType[*net.OpError](err)
	return dial || errors.Is(err, ErrUnreachable)
}

// ClientOpts returns the options every client starts from. Callers append
// their role's options (producer or group settings) and call kgo.NewClient.
func ClientOpts(o Options) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ClientID(o.ClientID),
		// Exponential backoff with jitter between retried requests, so that a
		// restarting broker is not hammered and clients do not retry in step.
		kgo.RetryBackoffFn(Backoff(100*time.Millisecond, 5*time.Second)),
	}
	opts = append(opts, securityOpts(o)...)
	if o.Logger != nil {
		// franz-go logs at info about every connection; warnings and errors
		// are what an operator needs from it.
		h := o.Logger.Handler()
		opts = append(opts, kgo.WithLogger(kslog.New(slog.New(levelFloor{h, slog.LevelWarn}).With("component", "kgo"))))
	}
	return opts
}

// Backoff adapts cenkalti's exponential backoff, the one the consumer uses,
// to a client's retry callback, which is given the attempt number: try n
// waits a random time between a third of and min(ceiling, base·2^(n-1)). The
// centre is two thirds of that bound, and the ±50 % jitter keeps clients
// from retrying in step.
func Backoff(base, ceiling time.Duration) func(int) time.Duration {
	return func(n int) time.Duration {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.MaxInterval = base*2/3, ceiling*2/3
		b.RandomizationFactor, b.Multiplier = 0.5, 2
		// The interval stops growing at the ceiling; 64 doublings pass any.
		d := b.NextBackOff()
		for range min(max(n, 1), 64) - 1 {
			d = b.NextBackOff()
		}
		return d
	}
}

// Ping waits until a broker answers, trying attempts times with exponential
// backoff, and fails with ErrUnreachable naming the brokers.
func Ping(ctx context.Context, cl *kgo.Client, brokers []string, attempts int) error {
	wait := Backoff(250*time.Millisecond, 4*time.Second)
	var err error
	for i := 1; i <= attempts; i++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = cl.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if i < attempts {
			select {
			case <-time.After(wait(i)):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	hint := ""
	if errors.Is(err, io.EOF) {
		// A broker that wants TLS or SASL the client does not offer, or
		// that refuses its credentials, may simply hang up.
		hint = " (the broker closed the connection: check that TLS and SASL settings and credentials match the broker's listener)"
	}
	tries := fmt.Sprintf("%d attempts", attempts)
	if attempts == 1 {
		tries = "1 attempt"
	}
	return fmt.Errorf("%w at %s after %s: %w%s", ErrUnreachable, strings.Join(brokers, ","), tries, err, hint)
}

// levelFloor drops records below a level, whatever the wrapped handler allows.
type levelFloor struct {
	slog.Handler
	floor slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.floor && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(as), h.floor}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.floor}
}
