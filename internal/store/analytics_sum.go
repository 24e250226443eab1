package store

import (
	"maps"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"

	"foodpipe/internal/order"
)

// increments are a batch's additions to the aggregates, summed in Go in
// exact cents so that each table gets one row per key.
type increments struct {
	minutes   map[time.Time]*minuteSum
	items     map[itemKey]*itemSum
	customers map[string]*customerSum
}

type minuteSum struct{ orders, cents int64 }

// itemKey keys an item by its name in NFC: a name sent composed ("è" as
// U+00E8) and decomposed ("e" and U+0300) looks the same and is one item.
// The orders table keeps the name as it was sent.
type itemKey struct {
	minute time.Time
	item   string
}

type itemSum struct{ quantity, cents int64 }

type customerSum struct {
	orders, cents int64
	last          time.Time
}

// order adds one order: to the minute (UTC) it was made in, whenever it
// arrives.
func (a *increments) order(createdAt time.Time, customer string, totalCents int64, items []order.Item) {
	if a.minutes == nil {
		a.minutes, a.items, a.customers = map[time.Time]*minuteSum{}, map[itemKey]*itemSum{}, map[string]*customerSum{}
	}
	minute := createdAt.UTC().Truncate(time.Minute)
	m := a.minutes[minute]
	if m == nil {
		m = &minuteSum{}
		a.minutes[minute] = m
	}
	m.orders++
	m.cents += totalCents
	for _, it := range items {
		k := itemKey{minute, norm.NFC.String(it.Name)} // the name itself when it is in NFC already, as most are
		s := a.items[k]
		if s == nil {
			s = &itemSum{}
			a.items[k] = s
		}
		s.quantity += int64(it.Quantity)
		s.cents += int64(it.Quantity) * int64(it.Price)
	}
	c := a.customers[customer]
	if c == nil {
		c = &customerSum{last: createdAt}
		a.customers[customer] = c
	}
	c.orders++
	c.cents += totalCents
	if createdAt.After(c.last) {
		c.last = createdAt
	}
}

// args are addAggregates' parameters from $2 on, each table's rows in a
// stable order (the order rows are locked in, so that two writers of the
// same keys cannot deadlock).
func (a *increments) args() []any {
	var mins []time.Time
	var mOrders, mCents []int64
	for _, k := range slices.SortedFunc(maps.Keys(a.minutes), time.Time.Compare) {
		mins, mOrders, mCents = append(mins, k), append(mOrders, a.minutes[k].orders), append(mCents, a.minutes[k].cents)
	}
	var iMins []time.Time
	var iNames []string
	var iQty, iCents []int64
	for _, k := range slices.SortedFunc(maps.Keys(a.items), func(x, y itemKey) int {
		if c := x.minute.Compare(y.minute); c != 0 {
			return c
		}
		return strings.Compare(x.item, y.item)
	}) {
		s := a.items[k]
		iMins, iNames, iQty, iCents = append(iMins, k.minute), append(iNames, k.item), append(iQty, s.quantity), append(iCents, s.cents)
	}
	var cIDs []string
	var cOrders, cCents []int64
	var cLast []time.Time
	for _, k := range slices.Sorted(maps.Keys(a.customers)) {
		s := a.customers[k]
		cIDs, cOrders, cCents, cLast = append(cIDs, k), append(cOrders, s.orders), append(cCents, s.cents), append(cLast, s.last)
	}
	return []any{mins, mOrders, mCents, iMins, iNames, iQty, iCents, cIDs, cOrders, cCents, cLast}
}
