// Package order is foodpipe's domain: the food order, its exact money type,
// the rules an order must meet before it may be stored, its JSON wire form,
// and a generator of realistic synthetic orders.
//
// Everything that crosses the Kafka topic is untrusted, so Decode treats any
// byte string as possible input: it never panics, and each refusal carries a
// stable Reason that the consumer writes into the dead-letter record. The
// rules mirror what the orders table can hold (VARCHAR(50) ids,
// NUMERIC(10,2) amounts, no NUL in text), so an order that passes Validate
// is one PostgreSQL will accept.
//
// The package deliberately imports neither the Kafka nor the PostgreSQL
// client: the producer and the consumer depend on it, not the other way
// round.
package order

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of a valid order. The id and name lengths count characters, as
// PostgreSQL's VARCHAR(n) does, not bytes.
const (
	MaxIDLen       = 50
	MaxItemNameLen = 100
	// MaxQuantity bounds one line of an order; no kitchen takes 10,001
	// burgers, and the bound keeps quantity × price far from overflow.
	MaxQuantity = 10_000
	// MinYear and MaxYear bound created_at. Anything outside is a clock or
	// encoding fault, and PostgreSQL's timestamp range would not hold every
	// year a time.Time can.
	MinYear = 2000
	MaxYear = 2100
)

// Status is where an order is in its life. Only the constants below are
// valid.
type Status string

// The known statuses. The generator only produces StatusPending; the others
// are accepted so that later stages can publish updates on the same schema.
const (
	StatusPending        Status = "pending"
	StatusConfirmed      Status = "confirmed"
	StatusPreparing      Status = "preparing"
	StatusReady          Status = "ready"
	StatusOutForDelivery Status = "out_for_delivery"
	StatusDelivered      Status = "delivered"
	StatusCancelled      Status = "cancelled"
)

// statuses maps wire text to the constants; Decode looks the message bytes
// up here so a known status costs no allocation.
var statuses = map[string]Status{
	string(StatusPending):        StatusPending,
	string(StatusConfirmed):      StatusConfirmed,
	string(StatusPreparing):      StatusPreparing,
	string(StatusReady):          StatusReady,
	string(StatusOutForDelivery): StatusOutForDelivery,
	string(StatusDelivered):      StatusDelivered,
	string(StatusCancelled):      StatusCancelled,
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	_, ok := statuses[string(s)]
	return ok
}

// Item is one line of an order.
type Item struct {
	Name     string `json:"name"`
	Quantity int    `json:"quantity"`
	Price    Money  `json:"price"`
}

// Order is one food order as it travels on the topic and is stored.
type Order struct {
	OrderID     string `json:"order_id"`
	CustomerID  string `json:"customer_id"`
	Items       []Item `json:"items"`
	TotalAmount Money  `json:"total_amount"`
	Status      Status `json:"status"`
	// CreatedAt is RFC 3339 on the wire, e.g. "2025-01-10T14:30:00.123Z".
	// Decode returns it in UTC, truncated to the microsecond that
	// PostgreSQL keeps.
	CreatedAt time.Time `json:"created_at"`
}

// Validate checks o against every rule an order must meet to be stored and
// returns the first failure as an *InvalidError, or nil.
//
// Fields are checked in a fixed order (order_id, customer_id, items with
// each item's name, quantity and price, total_amount, the sum, status,
// created_at) so that one bad order always yields the same reason.
func (o Order) Validate() error {
	if e := checkID("order_id", o.OrderID); e != nil {
		return e
	}
	if e := checkID("customer_id", o.CustomerID); e != nil {
		return e
	}
	if len(o.Items) == 0 {
		return invalid(ReasonNoItems, "items", "items is empty")
	}
	for i, it := range o.Items {
		if e := checkItem(i, it); e != nil {
			return e
		}
	}
	if o.TotalAmount <= 0 || o.TotalAmount > MaxMoney {
		return invalid(ReasonInvalidTotal, "total_amount",
			fmt.Sprintf("total_amount %s is not between 0.01 and %s", o.TotalAmount, MaxMoney))
	}
	sum, ok := o.Sum()
	if !ok {
		return invalid(ReasonTotalMismatch, "total_amount",
			fmt.Sprintf("total_amount %s, sum of items overflows", o.TotalAmount))
	}
	if sum != o.TotalAmount {
		return invalid(ReasonTotalMismatch, "total_amount",
			fmt.Sprintf("total_amount %s, sum of items %s", o.TotalAmount, sum))
	}
	if !o.Status.Valid() {
		if r, d := scanText(string(o.Status)).problem(); r != "" {
			return invalid(r, "status", "status "+d)
		}
		return invalid(ReasonUnknownStatus, "status", fmt.Sprintf("status %s is not known", quote(string(o.Status))))
	}
	if o.CreatedAt.IsZero() {
		return invalid(ReasonInvalidTimestamp, "created_at", "created_at is the zero time")
	}
	if y := o.CreatedAt.UTC().Year(); y < MinYear || y > MaxYear {
		return invalid(ReasonInvalidTimestamp, "created_at",
			fmt.Sprintf("created_at year %d is outside %d to %d", y, MinYear, MaxYear))
	}
	return nil
}

// Sum returns the exact sum of quantity × price over the items, and false
// if it does not fit in a Money. Validate's bounds make overflow impossible
// for a valid order, but Sum is exported and must be right for any input.
func (o Order) Sum() (Money, bool) {
	var sum Money
	for _, it := range o.Items {
		line, ok := mulMoney(it.Price, it.Quantity)
		if !ok {
			return 0, false
		}
		if (line > 0 && sum > maxInt64-line) || (line < 0 && sum < minInt64-line) {
			return 0, false
		}
		sum += line
	}
	return sum, true
}

const (
	maxInt64 Money = 1<<63 - 1
	minInt64 Money = -1 << 63
)

func mulMoney(p Money, q int) (Money, bool) {
	if p == 0 || q == 0 {
		return 0, true
	}
	r := p * Money(q)
	if r/Money(q) != p || (q == -1 && p == minInt64) {
		return 0, false
	}
	return r, true
}

func checkID(field, s string) *InvalidError {
	t := scanText(s)
	if r, d := t.problem(); r != "" {
		return invalid(r, field, field+" "+d)
	}
	switch {
	case t.runes == 0:
		return invalid(ReasonInvalidID, field, field+" is empty")
	case t.runes > MaxIDLen:
		return invalid(ReasonInvalidID, field, fmt.Sprintf("%s has %d characters, more than %d", field, t.runes, MaxIDLen))
	case t.control:
		return invalid(ReasonInvalidID, field, fmt.Sprintf("%s %s holds a control character", field, quote(s)))
	}
	return nil
}

func checkItem(i int, it Item) *InvalidError {
	// The field path is only built on failure: this runs for every item of
	// every order the consumer sees.
	t := scanText(it.Name)
	if r, d := t.problem(); r != "" {
		field := itemField(i, "name")
		return invalid(r, field, field+" "+d)
	}
	switch {
	case !t.printable:
		field := itemField(i, "name")
		return invalid(ReasonInvalidItemName, field, field+" is empty")
	case t.runes > MaxItemNameLen:
		field := itemField(i, "name")
		return invalid(ReasonInvalidItemName, field, fmt.Sprintf("%s has %d characters, more than %d", field, t.runes, MaxItemNameLen))
	case t.control:
		field := itemField(i, "name")
		return invalid(ReasonInvalidItemName, field, fmt.Sprintf("%s %s holds a control character", field, quote(it.Name)))
	}
	if it.Quantity <= 0 || it.Quantity > MaxQuantity {
		field := itemField(i, "quantity")
		return invalid(ReasonInvalidQuantity, field, fmt.Sprintf("%s %d is not between 1 and %d", field, it.Quantity, MaxQuantity))
	}
	if it.Price <= 0 || it.Price > MaxMoney {
		field := itemField(i, "price")
		return invalid(ReasonInvalidPrice, field, fmt.Sprintf("%s %s is not between 0.01 and %s", field, it.Price, MaxMoney))
	}
	return nil
}

func itemField(i int, name string) string {
	return fmt.Sprintf("items[%d].%s", i, name)
}

// textFacts is what the rules need to know about a piece of text, gathered
// in one pass because Validate runs on every order the consumer stores.
type textFacts struct {
	runes       int  // characters, as VARCHAR(n) counts them
	invalidUTF8 bool // PostgreSQL refuses it
	nul         bool // text and JSONB cannot hold U+0000
	// control: a control character other than NUL. Ids and names end up in
	// logs, headers and screens, where a newline or an escape sequence does
	// harm.
	control   bool
	printable bool // anything besides white space
}

// Classes of ASCII bytes, looked up rather than compared: scanText's loop
// is the hot part of Validate.
const (
	asciiNUL uint8 = 1 << iota
	asciiControl
	asciiPrintable
)

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range t {
		switch {
		case c == 0:
			t[c] = asciiNUL
		case c < 0x20 || c == 0x7f:
			t[c] = asciiControl
		}
		if c != ' ' && (c < '\t' || c > '\r') {
			t[c] |= asciiPrintable
		}
	}
	return t
}()

func scanText(s string) textFacts {
	var t textFacts
	var ascii uint8
	for i := 0; i < len(s); t.runes++ {
		if c := s[i]; c < utf8.RuneSelf {
			ascii |= asciiClass[c]
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			t.invalidUTF8 = true
		}
		t.control = t.control || unicode.IsControl(r)
		t.printable = t.printable || !unicode.IsSpace(r)
		i += size
	}
	t.nul = ascii&asciiNUL != 0
	t.control = t.control || ascii&asciiControl != 0
	t.printable = t.printable || ascii&asciiPrintable != 0
	return t
}

// problem reports text PostgreSQL would refuse or alter, with words that
// follow the field name. It comes before the per-field rules, so a NUL is
// always invalid_text, whatever the field.
func (t textFacts) problem() (Reason, string) {
	switch {
	case t.invalidUTF8:
		return ReasonInvalidUTF8, "is not valid UTF-8"
	case t.nul:
		return ReasonInvalidText, "holds a NUL character"
	}
	return "", ""
}

// quote renders a possibly hostile value for a message: quoted, escaped,
// and cut to a short prefix.
func quote(s string) string {
	const limit = 40
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q...", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}
