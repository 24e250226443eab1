package order

import (
	"strconv"
	"time"
	"unicode/utf8"
)

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

// appendTime writes t in UTC as RFC 3339 with three or six decimals. The
// digits are written by hand because time.AppendFormat has a fast path only
// for its own RFC 3339 layouts, and this runs once per produced order.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		// Outside four digits there is no RFC 3339 form; such an order
		// fails Validate, and time's own formatting is as good as any.
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
	}
	hour, minute, sec := t.Clock()
	micro := t.Nanosecond() / 1000
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	if micro%1000 == 0 {
		dst = appendDigits(dst, micro/1000, 3)
	} else {
		dst = appendDigits(dst, micro, 6)
	}
	return append(dst, 'Z')
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
