package order

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// leapingClock moves 7 h 13 min 1.234567 s per reading from the last
// second of 1999, so that orders cross days, months, leap years and
// centuries, with and without microseconds.
func leapingClock() func() time.Time {
	t := time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)
	return func() time.Time {
		t = t.Add(7*time.Hour + 13*time.Minute + 1_234_567*time.Microsecond)
		return t
	}
}

// TestGeneratedWireFormIsPinned holds the generator and the encoder to the
// bytes they wrote before either was made faster: the same seed and clock
// must keep giving the same orders, byte for byte.
func TestGeneratedWireFormIsPinned(t *testing.T) {
	tests := []struct {
		name  string
		clock func() func() time.Time
		n     int
		want  string
	}{
		{"orders a few milliseconds apart", steppingClock, 20_000, "9fa404e4193c7b80388095053a50b88fdb54d8d5a7d13c8571afa9da741f8503"},
		{"orders hours apart, over sixteen years", leapingClock, 20_000, "2866c8629e193a7abe0d19d359afe3ed6f634d2a6160f9cf3e09bf045087622a"},
	}
	// Each way of making orders must give the same bytes.
	ways := []struct {
		name string
		next func(g *Generator, o *Order, buf []byte) []byte
	}{
		{"Next and AppendJSON", func(g *Generator, o *Order, buf []byte) []byte { *o = g.Next(); return o.AppendJSON(buf) }},
		{"NextInto and AppendJSON", func(g *Generator, o *Order, buf []byte) []byte { g.NextInto(o); return o.AppendJSON(buf) }},
		{"AppendNext", func(g *Generator, o *Order, buf []byte) []byte { return g.AppendNext(buf, o) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, way := range ways {
				g := NewGenerator(2026, tt.clock())
				h := sha256.New()
				var o Order
				var buf []byte
				for range tt.n {
					buf = way.next(g, &o, buf[:0])
					h.Write(buf)
					h.Write([]byte(o.OrderID + "\n"))
				}
				if got := hex.EncodeToString(h.Sum(nil)); got != tt.want {
					t.Errorf("%s: sha256 of %d orders = %s, want %s", way.name, tt.n, got, tt.want)
				}
			}
		})
	}
}

func TestAppendNextWritesWhatAppendJSONWrites(t *testing.T) {
	clocks := []struct {
		name  string
		clock func() time.Time
	}{
		{"a clock now", nil},
		{"a clock within a millisecond", func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC) }},
		{"a clock before year 0", func() time.Time { return time.Date(-1, 1, 2, 3, 4, 5, 6000, time.UTC) }},
		{"a clock past year 9999", func() time.Time { return time.Date(12345, 1, 2, 3, 4, 5, 6000, time.UTC) }},
	}
	for _, c := range clocks {
		t.Run(c.name, func(t *testing.T) {
			g := NewGenerator(7, c.clock)
			var o Order
			for range 10_000 {
				got := g.AppendNext([]byte("prefix"), &o)
				if want := o.AppendJSON([]byte("prefix")); string(got) != string(want) {
					t.Fatalf("AppendNext wrote\n%s\nAppendJSON writes\n%s", got, want)
				}
			}
		})
	}
}

// appendStringByteByByte is appendString as it was before it read eight
// bytes at a time: the reference the faster one must agree with.
func appendStringByteByByte(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case safeASCII[c]:
				dst = append(dst, c)
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			default:
				const hex = "0123456789abcdef"
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

func TestAppendStringAgreesWithTheByteByByteLoop(t *testing.T) {
	// Every byte value at every place of a plain ASCII string, then random
	// strings drawn mostly from the bytes that need care.
	var inputs []string
	plain := "ORD-20261125-9f3ab2c1d4e5f607-000001"
	for c := range 256 {
		for i := range 20 {
			inputs = append(inputs, plain[:i]+string(rune(c))+plain[i:])
			inputs = append(inputs, plain[:i]+string([]byte{byte(c)})+plain[i:])
		}
	}
	alphabet := []string{"a", "Z", " ", "~", "\x7f", "\"", "\\", "\n", "\x00", "\x1f", "\x80", "\xff", "é", "🍔", "\u2028", "\xc3", "!", "/"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		inputs = append(inputs, b.String())
	}
	for _, s := range inputs {
		if got, want := appendString(nil, s), appendStringByteByByte(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestAppendTimeAgreesWithTimePackage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	zones := []*time.Location{time.UTC, time.FixedZone("X", -5*3600), time.FixedZone("Y", 13*3600+45*60)}
	lo, hi := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	for i := range 100_000 {
		micro := rng.Int64N(1_000_000)
		if i%2 == 0 {
			micro -= micro % 1000
		}
		tm := time.Unix(lo+rng.Int64N(hi-lo+1), micro*1000).In(zones[i%len(zones)])
		layout := "2006-01-02T15:04:05.000000Z"
		if micro%1000 == 0 {
			layout = "2006-01-02T15:04:05.000Z"
		}
		if got, want := string(appendTime(nil, tm)), tm.UTC().Format(layout); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}
