package store_test

import (
	"maps"
	"slices"
	"testing"

	"foodpipe/internal/store"
)

// A partition the group stored offsets of only in another incarnation of the
// topic is fresh: read from its log start. Other topics are no incarnation.
func TestOffsetsOfSortsTheIncarnationsOfATopic(t *testing.T) {
	now := store.Scope("food-orders", "NEW")
	all := []store.StoredOffset{
		{Topic: "food-orders", Partition: 0, Next: 3},
		{Topic: "food-orders-2@X", Partition: 2, Next: 9},
		{Topic: "food-orders@NEW", Partition: 0, Next: 5},
		{Topic: "food-orders@NEW", Partition: 1, Next: 6},
		{Topic: "food-orders@OLD", Partition: 1, Next: 8},
		{Topic: "food-orders@OLD", Partition: 2, Next: 7},
	}
	got := store.OffsetsOf(all, "food-orders", now)
	if want := map[int32]int64{0: 5, 1: 6}; !maps.Equal(got.Next, want) {
		t.Errorf("next %v, want %v", got.Next, want)
	}
	if want := map[int32]string{2: "food-orders@OLD"}; !maps.Equal(got.Fresh, want) {
		t.Errorf("fresh %v, want %v", got.Fresh, want)
	}
	if want := []string{"food-orders", "food-orders@OLD"}; !slices.Equal(got.Earlier, want) {
		t.Errorf("earlier %v, want %v", got.Earlier, want)
	}
	if s := store.Scope("food-orders", ""); s != "food-orders" {
		t.Errorf("a topic without an id is scoped %q", s)
	}
}
