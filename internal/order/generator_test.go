package order

import (
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// steppingClock starts at a fixed instant off UTC, with nanoseconds, and
// moves 1.5 ms per reading, so tests are deterministic and exercise the
// conversion to UTC microseconds.
func steppingClock() func() time.Time {
	t := time.Date(2026, 11, 25, 23, 59, 59, 999_999_999, time.FixedZone("CET", 3600))
	return func() time.Time {
		t = t.Add(1500 * time.Microsecond)
		return t
	}
}

func TestGeneratorIsDeterministicForASeed(t *testing.T) {
	a, b := NewGenerator(7, steppingClock()), NewGenerator(7, steppingClock())
	for i := range 1000 {
		if x, y := a.Next(), b.Next(); !reflect.DeepEqual(x, y) {
			t.Fatalf("order %d differs for the same seed:\n%+v\n%+v", i, x, y)
		}
	}
}

func TestGeneratorOrdersDependOnTheSeed(t *testing.T) {
	a, b := NewGenerator(1, steppingClock()), NewGenerator(2, steppingClock())
	same := 0
	for range 100 {
		x, y := a.Next(), b.Next()
		x.OrderID, y.OrderID = "", ""
		if reflect.DeepEqual(x, y) {
			same++
		}
	}
	if same > 10 {
		t.Errorf("%d of 100 orders are the same for seeds 1 and 2", same)
	}
}

func TestGeneratedOrders(t *testing.T) {
	const n = 100_000
	g := NewGenerator(2026, steppingClock())
	prices := map[string]Money{}
	for _, m := range Menu() {
		prices[m.Name] = m.Price
	}
	known := map[string]bool{}
	for _, c := range Customers() {
		known[c] = true
	}
	idForm := regexp.MustCompile(`^ORD-\d{8}-[0-9a-f]{16}-\d{6,}$`)
	ids := make(map[string]bool, n)
	seen := map[string]bool{}
	itemCounts := map[int]int{}
	quantities := map[int]int{}
	for i := range n {
		o := g.Next()
		if err := o.Validate(); err != nil {
			t.Fatalf("order %d fails Validate: %v\n%+v", i, err, o)
		}
		if ids[o.OrderID] {
			t.Fatalf("order id %s repeats after %d orders", o.OrderID, i)
		}
		ids[o.OrderID] = true
		if !idForm.MatchString(o.OrderID) || !strings.HasPrefix(o.OrderID, "ORD-"+o.CreatedAt.Format("20060102")+"-") {
			t.Fatalf("order id %s does not match its form or its date %v", o.OrderID, o.CreatedAt)
		}
		if !known[o.CustomerID] {
			t.Fatalf("customer %s is not one of Customers()", o.CustomerID)
		}
		seen[o.CustomerID] = true
		if o.Status != StatusPending {
			t.Fatalf("status %s, want pending", o.Status)
		}
		itemCounts[len(o.Items)]++
		names := map[string]bool{}
		for _, it := range o.Items {
			if p, ok := prices[it.Name]; !ok || p != it.Price {
				t.Fatalf("item %+v is not on the menu at its price", it)
			}
			if names[it.Name] {
				t.Fatalf("item %s appears twice in %+v", it.Name, o.Items)
			}
			names[it.Name] = true
			quantities[it.Quantity]++
		}
		if sum, ok := o.Sum(); !ok || sum != o.TotalAmount {
			t.Fatalf("total %s, sum %s", o.TotalAmount, sum)
		}
	}
	if len(seen) != 100 {
		t.Errorf("%d distinct customers over %d orders, want all 100", len(seen), n)
	}
	for k := 1; k <= 5; k++ {
		if itemCounts[k] == 0 {
			t.Errorf("no order has %d items", k)
		}
	}
	if len(itemCounts) != 5 {
		t.Errorf("item counts %v, want 1 to 5", itemCounts)
	}
	if len(quantities) != 4 || quantities[1] == 0 || quantities[4] == 0 {
		t.Errorf("quantities %v, want 1 to 4", quantities)
	}
}

func TestGeneratorSequenceAndPadding(t *testing.T) {
	g := NewGenerator(5, steppingClock())
	first := g.Next().OrderID
	if !strings.HasSuffix(first, "-000001") {
		t.Errorf("first id %s, want the sequence 000001", first)
	}
	g.seq = 999_999
	if id := g.Next().OrderID; !strings.HasSuffix(id, "-1000000") {
		t.Errorf("id %s, want the sequence to grow past six digits", id)
	}
	g.seq = math.MaxUint64 - 1
	if id := g.Next().OrderID; len(id) > MaxIDLen {
		t.Errorf("the longest id %s has %d characters, more than %d", id, len(id), MaxIDLen)
	}
}

func TestGeneratorsWithDifferentSeedsNeverShareIDs(t *testing.T) {
	clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	a, b := NewGenerator(1, clock), NewGenerator(2, clock)
	ids := map[string]bool{}
	for range 10_000 {
		ids[a.Next().OrderID] = true
	}
	for range 10_000 {
		if id := b.Next().OrderID; ids[id] {
			t.Fatalf("seeds 1 and 2 both issued %s", id)
		}
	}
	// The run id is a bijection of the seed; sample it.
	runs := map[[16]byte]uint64{}
	for _, seed := range []uint64{0, 1, 2, 3, math.MaxUint64, math.MaxUint64 - 1, 1 << 32, 1<<32 + 1} {
		r := NewGenerator(seed, clock).run
		if other, dup := runs[r]; dup {
			t.Fatalf("seeds %d and %d share run id %s", seed, other, r)
		}
		runs[r] = seed
	}
	for seed := range uint64(100_000) {
		r := NewGenerator(seed, clock).run
		if other, dup := runs[r]; dup && other != seed {
			t.Fatalf("seeds %d and %d share run id %s", seed, other, r)
		}
		runs[r] = seed
	}
}

func TestGeneratorCreatedAt(t *testing.T) {
	t.Run("the clock's reading is taken in UTC to the microsecond", func(t *testing.T) {
		reading := time.Date(2026, 11, 25, 0, 30, 0, 123_456_789, time.FixedZone("CET", 3600))
		o := NewGenerator(1, func() time.Time { return reading }).Next()
		want := time.Date(2026, 11, 24, 23, 30, 0, 123_456_000, time.UTC)
		if !reflect.DeepEqual(o.CreatedAt, want) {
			t.Errorf("created_at %v, want %v", o.CreatedAt, want)
		}
		if !strings.HasPrefix(o.OrderID, "ORD-20261124-") {
			t.Errorf("id %s, want the UTC date 20261124", o.OrderID)
		}
	})
	t.Run("a nil clock reads the time now", func(t *testing.T) {
		before := time.Now().Add(-time.Microsecond)
		o := NewGenerator(1, nil).Next()
		if o.CreatedAt.Before(before) || o.CreatedAt.After(time.Now()) || o.CreatedAt.Location() != time.UTC {
			t.Errorf("created_at %v is not now in UTC", o.CreatedAt)
		}
	})
	t.Run("a clock outside four-digit years still gives unique ids", func(t *testing.T) {
		g := NewGenerator(1, func() time.Time { return time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC) })
		a, b := g.Next(), g.Next()
		if a.OrderID == b.OrderID || !strings.HasPrefix(a.OrderID, "ORD-123450101-") {
			t.Errorf("ids %s and %s", a.OrderID, b.OrderID)
		}
		if ReasonOf(a.Validate()) != ReasonInvalidTimestamp {
			t.Errorf("an order from year 12345 passes Validate")
		}
	})
}

func TestMenu(t *testing.T) {
	m := Menu()
	if len(m) != 20 {
		t.Fatalf("%d menu items, want 20", len(m))
	}
	names := map[string]bool{}
	for _, it := range m {
		if names[it.Name] {
			t.Errorf("%s is on the menu twice", it.Name)
		}
		names[it.Name] = true
		if it.Price < 1_00 || it.Price > 50_00 {
			t.Errorf("%s costs %s, not a realistic price", it.Name, it.Price)
		}
	}
	for _, want := range []MenuItem{{"Burger", 8_99}, {"Fries", 3_49}, {"Margherita Pizza", 11_50}} {
		if !names[want.Name] {
			t.Errorf("%s is not on the menu", want.Name)
		}
	}
	m[0].Name = "changed"
	if Menu()[0].Name == "changed" {
		t.Error("changing the returned menu changed the package's")
	}
}

func TestCustomers(t *testing.T) {
	c := Customers()
	if len(c) != 100 || c[0] != "CUST-10001" || c[99] != "CUST-10100" {
		t.Fatalf("customers %s ... %s (%d), want CUST-10001 ... CUST-10100", c[0], c[len(c)-1], len(c))
	}
	distinct := map[string]bool{}
	for _, id := range c {
		distinct[id] = true
	}
	if len(distinct) != 100 {
		t.Errorf("%d distinct customers, want 100", len(distinct))
	}
	c[0] = "changed"
	if Customers()[0] == "changed" {
		t.Error("changing the returned customers changed the package's")
	}
}

func TestNextIntoReusesTheItemsAndNextDoesNot(t *testing.T) {
	g := NewGenerator(1, steppingClock())
	var o Order
	g.NextInto(&o)
	o.Items = make([]Item, 0, 5)
	first := &o.Items[:1][0]
	kept := g.Next()
	for range 100 {
		g.NextInto(&o)
		if &o.Items[0] != first {
			t.Fatal("NextInto allocated items although five fit")
		}
	}
	if again := g.Next(); &again.Items[0] == &kept.Items[0] {
		t.Error("two orders from Next share their items")
	}
}
