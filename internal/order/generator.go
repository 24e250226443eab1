package order

import (
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// MenuItem is one dish the generator can order.
type MenuItem struct {
	Name  string
	Price Money
}

// menu is the PRD's pool of 20 items (FR-1.1.1), priced like a casual
// delivery restaurant.
var menu = [...]MenuItem{
	{"Burger", 8_99},
	{"Cheeseburger", 9_99},
	{"Fries", 3_49},
	{"Margherita Pizza", 11_50},
	{"Pepperoni Pizza", 12_99},
	{"Caesar Salad", 7_25},
	{"Greek Salad", 8_49},
	{"Chicken Wings", 9_49},
	{"Veggie Wrap", 7_99},
	{"Fish Tacos", 10_49},
	{"Pad Thai", 12_50},
	{"Chicken Tikka Masala", 13_99},
	{"Salmon Sushi Roll", 8_75},
	{"Tonkotsu Ramen", 11_99},
	{"Onion Rings", 4_29},
	{"Mozzarella Sticks", 5_99},
	{"Garlic Bread", 3_99},
	{"Chocolate Milkshake", 4_99},
	{"Iced Tea", 2_49},
	{"Cola", 1_99},
}

// customers is the PRD's pool of 100 customers (FR-1.1.1).
var customers = func() (ids [100]string) {
	for i := range ids {
		ids[i] = "CUST-" + strconv.Itoa(10001+i)
	}
	return ids
}()

// Menu returns the 20 items the generator orders from. The slice is a copy.
func Menu() []MenuItem { return append([]MenuItem(nil), menu[:]...) }

// Customers returns the 100 customer ids, CUST-10001 to CUST-10100. The
// slice is a copy.
func Customers() []string { return append([]string(nil), customers[:]...) }

// Generator makes realistic pending orders: a random customer, one to five
// distinct menu items, one to four of each, and a total that is the exact
// sum.
//
// A Generator is not safe for concurrent use: its random source and
// sequence number are unsynchronised because the producer draws from one
// goroutine, and a lock would be paid on every order for nothing.
type Generator struct {
	rng   *rand.Rand
	clock func() time.Time
	run   [16]byte // the run id, in hex
	seq   uint64
	// perm is a permutation of the menu indexes. Each order takes the first
	// k entries after a partial Fisher–Yates shuffle, which draws k
	// distinct items uniformly without allocating.
	perm [len(menu)]uint8
	// id holds the last order id. Its first prefix bytes, "ORD-", the
	// date and the run id, stay while the UTC day (day, counted from the
	// Unix epoch) does, so only the sequence number is written per order.
	id     []byte
	prefix int
	day    int64
	// ids holds the strings of the last order ids, each a slice of it, so
	// that ids take one allocation per block of them rather than one each.
	// A Builder never changes bytes it has handed out.
	ids strings.Builder
	// customer is the index of the last order's customer; its items are
	// the first entries of perm.
	customer int
	// stamp is created_at's wire form to the second, for the second sec;
	// stamped is false until it is made, and when the year has no four
	// digits.
	stamp   stamp
	sec     int64
	stamped bool
}

// linePiece is a menu item's line on the wire, but for its quantity:
// {"name":"Burger","quantity": and ,"price":8.99}.
type linePiece struct{ head, tail []byte }

// Pieces of the wire form of generated orders, encoded once with
// AppendJSON's own helpers, for AppendNext.
var (
	linePieces = func() (p [len(menu)]linePiece) {
		for i, m := range menu {
			p[i].head = append(appendString([]byte(`{"name":`), m.Name), `,"quantity":`...)
			p[i].tail = append(appendMoney([]byte(`,"price":`), m.Price), '}')
		}
		return p
	}()
	// customerPieces are ,"customer_id":"CUST-10001","items":[ and so on.
	customerPieces = func() (p [len(customers)][]byte) {
		for i, c := range customers {
			p[i] = append(appendString([]byte(`,"customer_id":`), c), `,"items":[`...)
		}
		return p
	}()
	// statusPiece is ,"status":"pending","created_at":" .
	statusPiece = append(appendString([]byte(`,"status":`), string(StatusPending)), `,"created_at":"`...)
)

// NewGenerator returns a generator whose orders are a function of seed and
// the clock's readings: the same seed and clock give the same orders, which
// makes a run reproducible. A nil clock means time.Now.
//
// Order ids look like ORD-20261125-9f3ab2c1d4e5f607-000001: the UTC date of
// created_at, the run id, and a sequence number counting from 1, at least
// six digits wide. The run id is the seed put through an invertible 64-bit
// mixer, so generators with different seeds can never issue the same id,
// while nearby seeds (1, 2, 3) still give ids that look unrelated. The
// longest possible id, with a 20-digit sequence number, is 50 characters.
func NewGenerator(seed uint64, clock func() time.Time) *Generator {
	if clock == nil {
		clock = time.Now
	}
	g := &Generator{
		rng:   rand.New(rand.NewPCG(seed, 0x666f6f6470697065)), // "foodpipe"
		clock: clock,
		id:    make([]byte, 0, MaxIDLen),
	}
	const hex = "0123456789abcdef"
	run := mix64(seed)
	for i := range g.run {
		g.run[i] = hex[run>>(60-4*i)&0xf]
	}
	for i := range g.perm {
		g.perm[i] = uint8(i)
	}
	return g
}

// mix64 is the splitmix64 finaliser. Each step (xor-shift, multiplication
// by an odd constant) is invertible, so distinct seeds give distinct run
// ids.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Next returns the next order. Its created_at is the clock's reading in UTC
// truncated to microseconds, the precision PostgreSQL keeps, so that the
// order read back from the table equals the one produced.
func (g *Generator) Next() Order {
	var o Order
	g.NextInto(&o)
	return o
}

// NextInto makes in *o the order Next would return, reusing the array of
// o.Items when it is large enough: whatever *o held before is overwritten,
// its items included. The producer, which encodes each order before it
// makes the next, uses it to save an allocation per order.
func (g *Generator) NextInto(o *Order) {
	g.nextAt(o, g.clock())
}

// nextAt makes in *o the next order, created at.
func (g *Generator) nextAt(o *Order, at time.Time) {
	now := at.UTC().Truncate(time.Microsecond)
	g.seq++

	k := 1 + g.rng.IntN(5)
	items := o.Items[:0]
	if cap(items) < k {
		items = make([]Item, k)
	}
	items = items[:k]
	var total Money
	for i := range items {
		j := i + g.rng.IntN(len(g.perm)-i)
		g.perm[i], g.perm[j] = g.perm[j], g.perm[i]
		m := menu[g.perm[i]]
		items[i] = Item{Name: m.Name, Quantity: 1 + g.rng.IntN(4), Price: m.Price}
		total += m.Price * Money(items[i].Quantity)
	}

	g.customer = g.rng.IntN(len(customers))
	*o = Order{
		OrderID:     g.orderID(now),
		CustomerID:  customers[g.customer],
		Items:       items,
		TotalAmount: total,
		Status:      StatusPending,
		CreatedAt:   now,
	}
}

// AppendNext makes in *o the next order, as NextInto does, and appends its
// wire form to dst: the bytes o.AppendJSON would append, put together from
// pieces encoded once (each menu item's line but for the quantity, each
// customer, the current second of created_at). It is the producer's way to
// make orders, where encoding each field anew was a third of its own time.
func (g *Generator) AppendNext(dst []byte, o *Order) []byte {
	return g.AppendNextAt(dst, o, g.clock())
}

// AppendNextAt is AppendNext for an order placed at the moment at rather
// than at the clock's reading: a producer that hands orders over in groups
// (producer.Config.Linger) makes each one with the moment it was due, so
// that its created_at, and the latency measured from it, count the wait.
func (g *Generator) AppendNextAt(dst []byte, o *Order, at time.Time) []byte {
	g.nextAt(o, at)
	dst = append(dst, `{"order_id":`...)
	dst = appendString(dst, o.OrderID)
	dst = append(dst, customerPieces[g.customer]...)
	for i, it := range o.Items {
		if i > 0 {
			dst = append(dst, ',')
		}
		p := &linePieces[g.perm[i]]
		dst = append(dst, p.head...)
		dst = append(dst, "0123456789"[it.Quantity]) // 1 to 4
		dst = append(dst, p.tail...)
	}
	dst = append(dst, `],"total_amount":`...)
	dst = appendMoney(dst, o.TotalAmount)
	dst = append(dst, statusPiece...)
	if sec := o.CreatedAt.Unix(); !g.stamped || sec != g.sec {
		g.stamp, g.stamped = stampOf(o.CreatedAt)
		g.sec = sec
	}
	if g.stamped {
		dst = g.stamp.append(dst, o.CreatedAt.Nanosecond()/1000)
	} else {
		dst = appendTime(dst, o.CreatedAt)
	}
	return append(dst, '"', '}')
}

// orderID returns the id of order g.seq made at now, which is in UTC.
func (g *Generator) orderID(now time.Time) string {
	// Floor division: the day of a time before 1970 is negative.
	secs := now.Unix()
	day := secs / 86400
	if secs%86400 < 0 {
		day--
	}
	if g.prefix == 0 || day != g.day {
		b := append(g.id[:0], "ORD-"...)
		y, m, d := now.Date()
		if y < 0 || y > 9999 {
			// No eight-digit date exists; the order fails Validate on its
			// created_at anyway, and the id must still be unique.
			b = strconv.AppendInt(b, int64(y), 10)
		} else {
			b = appendDigits(b, y, 4)
		}
		b = appendDigits(b, int(m), 2)
		b = appendDigits(b, d, 2)
		b = append(b, '-')
		b = append(b, g.run[:]...)
		b = append(b, '-')
		g.id, g.prefix = b, len(b)
	}
	g.day = day
	b := g.id[:g.prefix]
	for v := g.seq; v < 100_000; v *= 10 {
		b = append(b, '0')
	}
	b = strconv.AppendUint(b, g.seq, 10)
	g.id = b
	if g.ids.Cap()-g.ids.Len() < len(b) {
		g.ids = strings.Builder{}
		g.ids.Grow(idsBlock)
	}
	n := g.ids.Len()
	g.ids.Write(b)
	return g.ids.String()[n:]
}

// idsBlock is the size of a block of order ids, about 25 of them; whoever
// keeps one id keeps its block.
const idsBlock = 1 << 10

// MovedAway is the one customer of the pool whose mailbox is gone: its
// address (Email) is on moved.example.com, which the mail server foodpipe
// starts for its tests and demos refuses for good, so that a permanent
// refusal, and its dead letter, happens in every run with enough orders.
const MovedAway = "CUST-10100"

// Email is the address of customer id: synthetic, on example.com, a domain
// reserved for examples (RFC 2606), so that no real mailbox ever receives
// foodpipe's mail; MovedAway's is on moved.example.com. A customer id with
// characters an address's local part cannot carry is written as hex.
func Email(customerID string) string {
	local := strings.ToLower(customerID)
	for _, r := range local {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			local = "x-" + hex.EncodeToString([]byte(customerID))
			break
		}
	}
	if local == "" || len(local) > 64 {
		local = "x-" + hex.EncodeToString([]byte(customerID))[:min(60, 2*len(customerID))]
	}
	domain := "example.com"
	if customerID == MovedAway {
		domain = "moved.example.com"
	}
	return local + "@" + domain
}
