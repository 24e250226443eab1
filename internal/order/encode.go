package order

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// HeaderOrderID is the Kafka record header that carries the order id beside
// the payload, so that logs and tools can correlate a record (or the dead
// letter it became) without decoding its value. The producer sets it; the
// consumer and the tools read it.
const HeaderOrderID = "order_id"

// AppendJSON appends the wire form of o to dst and returns the extended
// slice. The producer calls it for every order, reusing one buffer, so it
// writes the bytes directly instead of going through reflection.
//
// Fields come in the PRD's order; amounts have two decimals; created_at is
// written in UTC with milliseconds ("2025-01-10T14:30:00.123Z"), or with
// microseconds when the time has any, since PostgreSQL keeps microseconds
// and Decode must get back exactly the order that was encoded. Text that is
// not valid UTF-8 is written with U+FFFD in its place, as encoding/json
// does, so the output is always valid JSON; such an order fails Validate.
func (o Order) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"order_id":`...)
	dst = appendString(dst, o.OrderID)
	dst = append(dst, `,"customer_id":`...)
	dst = appendString(dst, o.CustomerID)
	dst = append(dst, `,"items":`...)
	dst = appendItems(dst, o.Items)
	dst = append(dst, `,"total_amount":`...)
	dst = appendMoney(dst, o.TotalAmount)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, string(o.Status))
	dst = append(dst, `,"created_at":"`...)
	dst = appendTime(dst, o.CreatedAt)
	return append(dst, '"', '}')
}

// MarshalJSON returns o.AppendJSON(nil), so that encoding/json writes the
// same bytes as the producer.
func (o Order) MarshalJSON() ([]byte, error) {
	return o.AppendJSON(make([]byte, 0, 256)), nil
}

// ItemsJSON returns the items as a canonical JSON array for the JSONB
// column, e.g. [{"name":"Burger","quantity":2,"price":8.99}]. Canonical
// means equal items give equal bytes, which the store relies on to tell a
// redelivered order from a conflicting one. No items give [].
func (o Order) ItemsJSON() []byte {
	return o.AppendItemsJSON(make([]byte, 0, 2+48*len(o.Items)))
}

// AppendItemsJSON appends what ItemsJSON returns to dst.
func (o *Order) AppendItemsJSON(dst []byte) []byte { return appendItems(dst, o.Items) }

func appendItems(dst []byte, items []Item) []byte {
	dst = append(dst, '[')
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, it.Name)
		dst = append(dst, `,"quantity":`...)
		dst = strconv.AppendInt(dst, int64(it.Quantity), 10)
		dst = append(dst, `,"price":`...)
		dst = appendMoney(dst, it.Price)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// safeASCII marks the bytes that may be copied into a JSON string as they
// are.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	if plain(s) {
		dst = append(dst, s...)
		return append(dst, '"')
	}
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				const hex = "0123456789abcdef"
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plain reports whether every byte of s is safeASCII, so that s is written
// as it is. It looks at eight bytes at a time, the last eight overlapping
// the ones before: ids and names are short plain ASCII, and a
// byte-by-byte loop was the largest part of encoding an order.
func plain(s string) bool {
	if len(s) < 8 {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c >= utf8.RuneSelf || !safeASCII[c] {
				return false
			}
		}
		return true
	}
	for i := 0; i+8 < len(s); i += 8 {
		if needsEscape(load64(s[i : i+8])) {
			return false
		}
	}
	return !needsEscape(load64(s[len(s)-8:]))
}

// load64 reads eight bytes of s, the first in the lowest byte. The
// compiler turns it into one load.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// needsEscape reports whether any of the eight bytes in w is not safeASCII:
// below 0x20, a quote, a backslash, or past ASCII. It is the classic
// "has a byte less than n" test (x - n·0x01…01) & ^x & 0x80…80, which is
// exact about whether such a byte exists, though not about which one; the
// byte loop finds out.
func needsEscape(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := w^(ones*'"'), w^(ones*'\\')
	control := (w - ones*0x20) & ^w
	return (control|(quote-ones)&^quote|(backslash-ones)&^backslash|w)&highs != 0
}

// appendTime writes t in UTC as RFC 3339 with three or six decimals. The
// digits are written by hand because time.AppendFormat has a fast path only
// for its own RFC 3339 layouts, and this runs once per produced order.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	s, ok := stampOf(t)
	if !ok {
		// Outside four digits there is no RFC 3339 form; such an order
		// fails Validate, and time's own formatting is as good as any.
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
	}
	return s.append(dst, t.Nanosecond()/1000)
}

// stamp is a time on the wire, 2006-01-02T15:04:05.000000Z, filled in
// place and appended at once: one append per field was half the cost. The
// generator keeps the stamp of the current second and fills in only the
// fraction.
type stamp [27]byte

// stampOf returns the stamp of t, which is in UTC, to the second; false if
// its year does not have four digits.
func stampOf(t time.Time) (stamp, bool) {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return stamp{}, false
	}
	hour, minute, sec := t.Clock()
	s := stamp{4: '-', 7: '-', 10: 'T', 13: ':', 16: ':', 19: '.'}
	put2(s[0:2], year/100)
	put2(s[2:4], year%100)
	put2(s[5:7], int(month))
	put2(s[8:10], day)
	put2(s[11:13], hour)
	put2(s[14:16], minute)
	put2(s[17:19], sec)
	return s, true
}

// append appends s with micro, the microseconds past its second, as three
// decimals when they are whole milliseconds and six otherwise.
func (s stamp) append(dst []byte, micro int) []byte {
	if micro%1000 == 0 {
		milli := micro / 1000
		s[20] = "0123456789"[milli/100]
		put2(s[21:23], milli%100)
		s[23] = 'Z'
		return append(dst, s[:24]...)
	}
	put2(s[20:22], micro/10000)
	put2(s[22:24], micro/100%100)
	put2(s[24:26], micro%100)
	s[26] = 'Z'
	return append(dst, s[:]...)
}

// digitPairs holds "00" to "99", so that two digits cost one lookup.
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// put2 writes v, which must be 0 to 99, as two digits into b[0:2].
func put2(b []byte, v int) {
	_ = b[1]
	b[0], b[1] = digitPairs[2*v], digitPairs[2*v+1]
}

// appendDigits writes v, which must fit, zero-padded to width digits.
func appendDigits(dst []byte, v, width int) []byte {
	var b [8]byte
	for i := width - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:width]...)
}
