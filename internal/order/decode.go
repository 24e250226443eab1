package order

// Decode and the order half of its parser: which keys it reads, how each
// value becomes a field of Order, and which Reason each problem gets. The
// JSON scanner it drives is scan.go.
//
// The scanner is hand-written, not built on json/v2's jsontext.Decoder,
// because jsontext takes 1.6 to 1.7 times the CPU time per order, past the
// 1.5 times at which this package would give its own scanner up. It is not
// for want of strictness: decodeJSONText (decode_jsontext_test.go) is
// Decode rebuilt on ReadToken, ReadValue and jsontext's duplicate-name
// check, with Decode's conversion; it passes every decode test, and
// FuzzDecodeJSONTextAgreesWithDecode holds it to Decode's answers. Both
// allocate the same. Measured 2026-12-03, go1.26.8 linux/amd64, 2 shared
// cores (AMD EPYC), with jsontext from github.com/go-json-experiment/json
// v1.27.2 in the default build ("module"), and from the toolchain's
// encoding/json/jsontext with GOEXPERIMENT=jsonv2 ("std"; the module then
// forwards to it). Medians of 6:
//
//	go test -bench . -benchmem -count 6 ./internal/order/
//	                                 ns/op module  ns/op std  B/op  allocs/op
//	BenchmarkDecode (hand)                   1366        965   144          2
//	BenchmarkDecodeJSONText                  1940       1998   144          2
//	BenchmarkDecodeRefusal (hand)            1052       1357   224          8
//	BenchmarkDecodeRefusalJSONText           1656       1913   224          8
//	BenchmarkDecodeWithEncodingJSON          4360       2189   752         17
//
// (encoding/json with GOEXPERIMENT=jsonv2 runs on v2: 336 B in 4.) Wall
// time on shared cores moves by up to 40% from run to run, so the ratio is
// read from BenchmarkDecodeVsJSONText, which alternates the two on one
// thread and compares their CPU time (spread under 5%): jsontext/hand is
// 1.72 (module) and 1.57 (std) per order, 1.54 and 1.46 per refusal.

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits on what Decode will read. Orders are a few hundred bytes and three
// levels deep; the limits only keep hostile messages cheap to refuse.
const (
	MaxMessageSize = 1 << 20
	MaxDepth       = 32
)

// Decode parses a Kafka message value into an Order and validates it. Every
// failure is an *InvalidError. Decode never panics and takes time linear in
// len(data), whatever the bytes.
//
// It is a hand-written single-pass parser rather than encoding/json, for
// reasons that each matter on a topic anyone can write to:
//   - amounts are read exactly from their literal text, never via float64;
//   - keys match exactly ("Order_ID" is an unknown field, not order_id);
//   - nesting is limited to MaxDepth while scanning, not after;
//   - it runs several times faster with two allocations per order, which
//     the consumer's 100k orders/s on two cores needs.
//
// What it accepts: one JSON object (RFC 8259) in valid UTF-8, surrounded by
// optional white space. Unknown fields are ignored, at any depth, so that
// producers can add fields before consumers know them. A key that appears
// twice in one object is refused (duplicate_key): RFC 8259 leaves it to each
// reader which value wins, so two readers could see two different orders.
// Valid JSON nested deeper than MaxDepth is too_deep.
// A quantity must be a whole number written without an exponent: 2 and 2.0
// are accepted, 2.5 and 1e2 are not (no producer writes exponents, and
// refusing them keeps the rule simple to state). Amounts follow ParseMoney.
// created_at follows time.RFC3339Nano with an upper-case T and Z; it is
// returned in UTC and truncated to microseconds, as PostgreSQL stores it.
//
// When several things are wrong, the first in this order is reported: an
// empty value, the size, invalid UTF-8, the JSON syntax (which is checked
// over the whole message first), then each field in the order order_id,
// customer_id, items (element by element: name, quantity, price),
// total_amount, status, created_at (absent or null, wrong JSON type, or a
// value that cannot be represented, such as a lone surrogate escape or
// 8.999), and last the rules of Validate.
func Decode(data []byte) (Order, error) {
	if err := precheck(data); err != nil {
		return Order{}, err
	}
	var d decoder
	d.data = data
	if err := d.document(); err != nil {
		return Order{}, err
	}
	if d.dupErr != nil {
		return Order{}, d.dupErr
	}
	o, err := d.order()
	if err != nil {
		return Order{}, err
	}
	if err := o.Validate(); err != nil {
		return Order{}, err
	}
	return o, nil
}

// precheck refuses what is wrong before any JSON is read: an empty value,
// the size, invalid UTF-8.
func precheck(data []byte) *InvalidError {
	switch {
	case len(data) == 0:
		return invalid(ReasonEmptyValue, "", "empty message value (a tombstone)")
	case len(data) > MaxMessageSize:
		return invalid(ReasonNotJSON, "", fmt.Sprintf("message of %d bytes is larger than %d", len(data), MaxMessageSize))
	case !utf8.Valid(data):
		return invalid(ReasonInvalidUTF8, "", fmt.Sprintf("not valid UTF-8 at byte %d", invalidUTF8At(data)))
	}
	return nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// decoder reads an order: the scanner, and the fields found so far.
type decoder struct {
	scanner

	orderID, customerID, totalAmount, status, createdAt value

	// Items are converted while they are parsed, so that memory stays
	// proportional to the valid items and not to whatever the array holds.
	// After the first bad element the rest are only checked for syntax.
	// The first few live in an array inside the decoder, which stays on the
	// stack, so a typical order's items are allocated once, at their final
	// size.
	itemsKind kind
	nItems    int
	itemBuf   [8]Item
	moreItems []Item
	itemErr   *InvalidError
}

func (d *decoder) addItem(it Item) {
	if d.nItems < len(d.itemBuf) {
		d.itemBuf[d.nItems] = it
	} else {
		d.moreItems = append(d.moreItems, it)
	}
	d.nItems++
}

// document parses the whole message: one object and nothing after it.
func (d *decoder) document() *InvalidError {
	d.space()
	if d.pos == len(d.data) {
		return d.syntax("no JSON value")
	}
	if d.data[d.pos] != '{' {
		if _, err := d.value(); err != nil {
			return err
		}
		return invalid(ReasonNotJSON, "", "the message is not a JSON object")
	}
	if err := d.object(d.orderField); err != nil {
		return err
	}
	d.space()
	if d.pos != len(d.data) {
		return d.syntax("data after the object")
	}
	return nil
}

// orderField reads the value of one top-level key.
func (d *decoder) orderField(key []byte) *InvalidError {
	var err *InvalidError
	switch string(key) {
	case "order_id":
		d.orderID, err = d.value()
	case "customer_id":
		d.customerID, err = d.value()
	case "items":
		d.nItems, d.moreItems, d.itemErr = 0, d.moreItems[:0], nil
		if d.peek() == '[' {
			d.itemsKind = kindArray
			return d.array(d.item)
		}
		var v value
		v, err = d.value()
		d.itemsKind = v.kind
	case "total_amount":
		d.totalAmount, err = d.value()
	case "status":
		d.status, err = d.value()
	case "created_at":
		d.createdAt, err = d.value()
	default:
		_, err = d.value()
	}
	return err
}

// item parses element i of the items array and, while no element before it
// has failed, converts it.
func (d *decoder) item(i int) *InvalidError {
	if d.peek() != '{' {
		v, err := d.value()
		if err == nil && d.itemErr == nil {
			f := fmt.Sprintf("items[%d]", i)
			d.itemErr = invalid(ReasonWrongType, f, fmt.Sprintf("%s is %s, want an object", f, v.kind))
		}
		return err
	}
	var name, quantity, price value
	err := d.object(func(key []byte) *InvalidError {
		var err *InvalidError
		switch string(key) {
		case "name":
			name, err = d.value()
		case "quantity":
			quantity, err = d.value()
		case "price":
			price, err = d.value()
		default:
			_, err = d.value()
		}
		return err
	})
	if err != nil || d.itemErr != nil {
		return err
	}
	it, bad := convertItem(i, name, quantity, price)
	if bad != nil {
		// The first bad item is kept and reported once the whole message
		// has parsed; the parse itself goes on.
		d.itemErr = bad
		return nil //nolint:nilerr // see above
	}
	d.addItem(it)
	return nil
}

// menuNames lets Decode return the menu's own string for a known item name
// instead of allocating a copy per order.
var menuNames = func() map[string]string {
	m := make(map[string]string, len(menu))
	for _, it := range menu {
		m[it.Name] = it.Name
	}
	return m
}()

func convertItem(i int, name, quantity, price value) (Item, *InvalidError) {
	if err := shape(name, kindString, i, "name"); err != nil {
		return Item{}, err
	}
	if err := shape(quantity, kindNumber, i, "quantity"); err != nil {
		return Item{}, err
	}
	if err := shape(price, kindNumber, i, "price"); err != nil {
		return Item{}, err
	}
	var scratch [128]byte
	text, ok := unescape(scratch[:0], name)
	if !ok {
		f := itemField(i, "name")
		return Item{}, invalid(ReasonInvalidText, f, f+" holds an unpaired surrogate escape")
	}
	it := Item{Name: menuNames[string(text)]}
	if it.Name == "" {
		it.Name = string(text)
	}
	q, why := parseQuantity(quantity.raw)
	if why != "" {
		f := itemField(i, "quantity")
		return Item{}, invalid(ReasonInvalidQuantity, f, fmt.Sprintf("%s %s %s", f, quote(string(quantity.raw)), why))
	}
	it.Quantity = q
	p, st := parseMoney(price.raw)
	if st != moneyOK {
		f := itemField(i, "price")
		return Item{}, invalid(ReasonInvalidPrice, f, fmt.Sprintf("%s %s %s", f, quote(string(price.raw)), st.why()))
	}
	it.Price = p
	return it, nil
}

// shape checks that a field is present, not null, and of the wanted type.
// i < 0 means a top-level field.
func shape(v value, want kind, i int, field string) *InvalidError {
	if v.kind == want {
		return nil
	}
	if i >= 0 {
		field = itemField(i, field)
	}
	switch v.kind {
	case kindAbsent:
		return invalid(ReasonMissingField, field, field+" is missing")
	case kindNull:
		return invalid(ReasonMissingField, field, field+" is null")
	}
	return invalid(ReasonWrongType, field, fmt.Sprintf("%s is %s, want %s", field, v.kind, want))
}

// parseQuantity reads a JSON number literal (already checked by the
// scanner) as a whole number. It returns why it is not one, or "".
func parseQuantity(b []byte) (int, string) {
	i := 0
	neg := b[0] == '-'
	if neg {
		i++
	}
	start := i
	n := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		if i-start >= 9 {
			return 0, "is out of range"
		}
		n = n*10 + int(b[i]-'0')
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && isDigit(b[i]); i++ {
			if b[i] != '0' {
				return 0, "is not a whole number"
			}
		}
	}
	if i < len(b) {
		return 0, "has an exponent"
	}
	if neg {
		n = -n
	}
	return n, ""
}

// order converts the top-level fields, in the documented order.
func (d *decoder) order() (Order, *InvalidError) {
	if err := shape(d.orderID, kindString, -1, "order_id"); err != nil {
		return Order{}, err
	}
	if err := shape(d.customerID, kindString, -1, "customer_id"); err != nil {
		return Order{}, err
	}
	// Both ids go into one string: one allocation instead of two.
	var scratch [128]byte
	ids, ok := unescape(scratch[:0], d.orderID)
	if !ok {
		return Order{}, invalid(ReasonInvalidText, "order_id", "order_id holds an unpaired surrogate escape")
	}
	split := len(ids)
	if ids, ok = unescape(ids, d.customerID); !ok {
		return Order{}, invalid(ReasonInvalidText, "customer_id", "customer_id holds an unpaired surrogate escape")
	}
	switch d.itemsKind {
	case kindArray:
		if d.itemErr != nil {
			return Order{}, d.itemErr
		}
	default:
		return Order{}, shape(value{kind: d.itemsKind}, kindArray, -1, "items")
	}
	if err := shape(d.totalAmount, kindNumber, -1, "total_amount"); err != nil {
		return Order{}, err
	}
	total, st := parseMoney(d.totalAmount.raw)
	if st != moneyOK {
		return Order{}, invalid(ReasonInvalidTotal, "total_amount",
			fmt.Sprintf("total_amount %s %s", quote(string(d.totalAmount.raw)), st.why()))
	}
	if err := shape(d.status, kindString, -1, "status"); err != nil {
		return Order{}, err
	}
	if err := shape(d.createdAt, kindString, -1, "created_at"); err != nil {
		return Order{}, err
	}
	var tbuf [64]byte
	text, ok := unescape(tbuf[:0], d.status)
	if !ok {
		return Order{}, invalid(ReasonInvalidText, "status", "status holds an unpaired surrogate escape")
	}
	status, known := statuses[string(text)]
	if !known {
		status = Status(text)
	}
	text, ok = unescape(tbuf[:0], d.createdAt)
	if !ok {
		return Order{}, invalid(ReasonInvalidText, "created_at", "created_at holds an unpaired surrogate escape")
	}
	created, parsed := parseTime(text)
	if !parsed {
		return Order{}, invalid(ReasonInvalidTimestamp, "created_at",
			fmt.Sprintf("created_at %s is not an RFC 3339 time", quote(string(text))))
	}
	s := string(ids)
	o := Order{
		OrderID:     s[:split],
		CustomerID:  s[split:],
		TotalAmount: total,
		Status:      status,
		CreatedAt:   created,
	}
	o.Items = make([]Item, d.nItems)
	n := copy(o.Items, d.itemBuf[:min(d.nItems, len(d.itemBuf))])
	copy(o.Items[n:], d.moreItems)
	return o, nil
}

// parseTime parses what time.RFC3339Nano accepts, with a stricter
// fraction of 1 to 9 digits:
// YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm). It works on bytes and does no
// allocation, unlike time.Parse on a string converted from the message.
func parseTime(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") ||
		b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := atoi(b[0:4])
	month, ok2 := atoi(b[5:7])
	day, ok3 := atoi(b[8:10])
	hour, ok4 := atoi(b[11:13])
	minute, ok5 := atoi(b[14:16])
	sec, ok6 := atoi(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	i, nsec := 19, 0
	if b[i] == '.' {
		i++
		start := i
		for ; i < len(b) && isDigit(b[i]); i++ {
			if i-start == 9 {
				return time.Time{}, false
			}
			nsec = nsec*10 + int(b[i]-'0')
		}
		if i == start {
			return time.Time{}, false
		}
		for n := i - start; n < 9; n++ {
			nsec *= 10
		}
	}
	var offset int
	switch rest := b[i:]; {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := atoi(rest[1:3])
		om, ok2 := atoi(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec/1000*1000, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

func atoi(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
