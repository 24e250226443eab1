package order

// This file is longer than the 400 lines the project aims at: it is one
// parser, whose scanning, conversion and error reporting share the decoder's
// state and are read together; split, each part would only make sense with
// the others open beside it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
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
	switch {
	case len(data) == 0:
		return Order{}, invalid(ReasonEmptyValue, "", "empty message value (a tombstone)")
	case len(data) > MaxMessageSize:
		return Order{}, invalid(ReasonNotJSON, "", fmt.Sprintf("message of %d bytes is larger than %d", len(data), MaxMessageSize))
	case !utf8.Valid(data):
		return Order{}, invalid(ReasonInvalidUTF8, "", fmt.Sprintf("not valid UTF-8 at byte %d", invalidUTF8At(data)))
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

// kind is the JSON type of a value.
type kind uint8

const (
	kindAbsent kind = iota
	kindNull
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindArray:
		return "an array"
	case kindObject:
		return "an object"
	}
	return "absent"
}

// value is a field's value as found in the message, not yet converted: for
// a string the bytes between the quotes, still escaped; for a number its
// literal. Converting only after the whole message has parsed lets a syntax
// error anywhere win over a field problem, and costs nothing for the
// unknown fields that are skipped.
type value struct {
	kind    kind
	escaped bool
	raw     []byte
}

type decoder struct {
	data  []byte
	pos   int
	depth int

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

	// dupErr is the first key seen twice in one object. It is reported
	// only once the whole message has parsed, so that a syntax error
	// anywhere still makes the message not_json.
	dupErr *InvalidError
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

func (st moneyStatus) why() string {
	switch st {
	case moneyDecimals:
		return "has more than two decimals"
	case moneyExponent:
		return "has an exponent"
	case moneyRange:
		return "is out of range"
	}
	return "is not a decimal amount"
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

// --- The scanner. Every method leaves d.pos after what it consumed. ---

func (d *decoder) syntax(what string) *InvalidError {
	if d.pos >= len(d.data) {
		return invalid(ReasonNotJSON, "", what+" at the end of the message")
	}
	return invalid(ReasonNotJSON, "", fmt.Sprintf("%s at byte %d, found %s", what, d.pos, quoteRune(d.data[d.pos:])))
}

func quoteRune(b []byte) string {
	r, _ := utf8.DecodeRune(b)
	return fmt.Sprintf("%q", r)
}

func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next byte, or 0 at the end; 0 is never valid JSON
// outside a string, so it needs no separate case.
func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *decoder) next() byte {
	c := d.peek()
	d.pos++
	return c
}

func (d *decoder) enter() *InvalidError {
	d.pos++
	d.depth++
	if d.depth > MaxDepth {
		d.pos--
		// Parsing stops here, so whether the message is JSON at all is
		// asked of a parser that does not recurse (this rare path only):
		// valid JSON that is merely too deep is too_deep, not not_json.
		if !json.Valid(d.data) {
			return d.syntax(fmt.Sprintf("nesting deeper than %d", MaxDepth))
		}
		return invalid(ReasonTooDeep, "", fmt.Sprintf("JSON nested deeper than %d, at byte %d", MaxDepth, d.pos))
	}
	return nil
}

// object parses an object at d.pos, handing each key, unescaped, to field,
// which must consume the value.
func (d *decoder) object(field func(key []byte) *InvalidError) *InvalidError {
	if err := d.enter(); err != nil {
		return err
	}
	d.space()
	if d.peek() == '}' {
		d.pos++
		d.depth--
		return nil
	}
	// The keys seen so far, to refuse one seen twice: RFC 8259 leaves it
	// to each reader which value wins, so two readers of the same message
	// could store different orders. Objects are small; a big one is
	// looked up through a map.
	var small [8][]byte
	keys := small[:0]
	var many map[string]struct{}
	for {
		d.space()
		if d.peek() != '"' {
			return d.syntax("want a string key")
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		name := key.raw
		if key.escaped {
			// Rare enough to allocate. An unpaired surrogate cannot spell
			// a known key, so the key is then simply unknown.
			name, _ = unescape(nil, key)
		}
		if d.dupErr == nil {
			seen := false
			if many != nil {
				_, seen = many[string(name)]
				many[string(name)] = struct{}{}
			} else {
				for _, k := range keys {
					if bytes.Equal(k, name) {
						seen = true
						break
					}
				}
				if keys = append(keys, name); len(keys) > 32 {
					many = make(map[string]struct{}, 2*len(keys))
					for _, k := range keys {
						many[string(k)] = struct{}{}
					}
				}
			}
			if seen {
				d.dupErr = invalid(ReasonDuplicateKey, string(name), fmt.Sprintf("the key %q appears twice in one object", name))
			}
		}
		d.space()
		if d.next() != ':' {
			d.pos--
			return d.syntax("want ':' after a key")
		}
		d.space()
		if err := field(name); err != nil {
			return err
		}
		d.space()
		switch d.next() {
		case ',':
		case '}':
			d.depth--
			return nil
		default:
			d.pos--
			return d.syntax("want ',' or '}' in object")
		}
	}
}

// value parses any value. Strings, numbers and literals are returned
// unconverted; arrays and objects are checked and skipped.
func (d *decoder) value() (value, *InvalidError) {
	switch c := d.peek(); {
	case c == '"':
		return d.str()
	case c == '-' || isDigit(c):
		return d.number()
	case c == '{':
		return value{kind: kindObject}, d.object(func([]byte) *InvalidError {
			_, err := d.value()
			return err
		})
	case c == '[':
		return value{kind: kindArray}, d.array(d.skip)
	case c == 't':
		return value{kind: kindBool}, d.literal("true")
	case c == 'f':
		return value{kind: kindBool}, d.literal("false")
	case c == 'n':
		return value{kind: kindNull}, d.literal("null")
	}
	return value{}, d.syntax("want a JSON value")
}

// array parses a JSON array, calling elem for element i with the decoder
// at its first byte; elem must consume the element.
func (d *decoder) array(elem func(i int) *InvalidError) *InvalidError {
	if err := d.enter(); err != nil {
		return err
	}
	d.space()
	if d.peek() == ']' {
		d.pos++
		d.depth--
		return nil
	}
	for i := 0; ; i++ {
		d.space()
		if err := elem(i); err != nil {
			return err
		}
		d.space()
		switch d.next() {
		case ',':
		case ']':
			d.depth--
			return nil
		default:
			d.pos--
			return d.syntax("want ',' or ']' in array")
		}
	}
}

// skip consumes any JSON value.
func (d *decoder) skip(int) *InvalidError {
	_, err := d.value()
	return err
}

// literal consumes true, false or null. A word that only starts like one
// (the n of "not json") is reported as the word it is, which a person reads
// more easily than the literal the parser hoped for.
func (d *decoder) literal(word string) *InvalidError {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		end := d.pos
		for end < len(d.data) && end-d.pos < 20 && !strings.ContainsRune(" \t\r\n,:[]{}\"", rune(d.data[end])) {
			end++
		}
		return invalid(ReasonNotJSON, "", fmt.Sprintf("%s at byte %d is not a JSON value", quote(string(d.data[d.pos:end])), d.pos))
	}
	d.pos += len(word)
	return nil
}

// str scans a string at d.pos. The input is known to be valid UTF-8, so
// only the escapes and raw control characters need checking.
func (d *decoder) str() (value, *InvalidError) {
	d.pos++
	start := d.pos
	escaped := false
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			v := value{kind: kindString, escaped: escaped, raw: d.data[start:d.pos]}
			d.pos++
			return v, nil
		case c == '\\':
			escaped = true
			d.pos++
			switch d.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.pos++
			case 'u':
				d.pos++
				for range 4 {
					if !isHex(d.peek()) {
						return value{}, d.syntax("want four hex digits after \\u")
					}
					d.pos++
				}
			default:
				return value{}, d.syntax("invalid escape")
			}
		case c < 0x20:
			return value{}, d.syntax("control character in string")
		default:
			d.pos++
		}
	}
	return value{}, d.syntax("unterminated string")
}

// number scans a number per RFC 8259:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func (d *decoder) number() (value, *InvalidError) {
	start := d.pos
	if d.peek() == '-' {
		d.pos++
	}
	switch c := d.peek(); {
	case c == '0':
		d.pos++
	case isDigit(c):
		d.digits()
	default:
		return value{}, d.syntax("want a digit")
	}
	if d.peek() == '.' {
		d.pos++
		if !isDigit(d.peek()) {
			return value{}, d.syntax("want a digit after '.'")
		}
		d.digits()
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.pos++
		if c := d.peek(); c == '+' || c == '-' {
			d.pos++
		}
		if !isDigit(d.peek()) {
			return value{}, d.syntax("want a digit in the exponent")
		}
		d.digits()
	}
	return value{kind: kindNumber, raw: d.data[start:d.pos]}, nil
}

func (d *decoder) digits() {
	for d.pos < len(d.data) && isDigit(d.data[d.pos]) {
		d.pos++
	}
}

func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// unescape appends the text of a scanned string to dst. It reports false
// for an unpaired UTF-16 surrogate escape, which has no UTF-8 form;
// encoding/json would quietly turn it into U+FFFD, changing the data.
func unescape(dst []byte, v value) ([]byte, bool) {
	if !v.escaped {
		return append(dst, v.raw...), true
	}
	s := v.raw
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		c = s[i+1]
		i += 2
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i:])
			i += 4
			if 0xD800 <= r && r < 0xDC00 {
				if i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
					return dst, false
				}
				lo := hex4(s[i+2:])
				if lo < 0xDC00 || lo > 0xDFFF {
					return dst, false
				}
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			} else if 0xDC00 <= r && r <= 0xDFFF {
				return dst, false
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
	return dst, true
}

// hex4 reads four hex digits the scanner has already checked.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			r = r<<4 | rune(c-'0')
		case c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			r = r<<4 | rune(c-'a'+10)
		}
	}
	return r
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
