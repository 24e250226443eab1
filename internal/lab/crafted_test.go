package lab

import (
	"errors"
	"testing"

	"foodpipe/internal/order"
)

// Every reason the lab offers is made by bytes the consumer's decoder
// refuses for exactly that reason, from whatever order the generator makes.
func TestEachCraftedMessageIsRefusedForItsReason(t *testing.T) {
	gen := order.NewGenerator(7, nil)
	reasons := Reasons()
	if len(reasons) != 17 {
		t.Fatalf("the lab offers %d reasons, want the 17 of package order", len(reasons))
	}
	for range 20 {
		o := gen.Next()
		for _, r := range reasons {
			b, err := Invalid(o, r)
			if err != nil {
				t.Fatal(err)
			}
			_, err = order.Decode(b)
			if got := order.ReasonOf(err); got != r {
				t.Errorf("crafted %s: Decode gave %q (%v) for %q", r, got, err, b)
			}
		}
	}
}

func TestAnUnknownReasonIsRefused(t *testing.T) {
	if _, err := Invalid(order.NewGenerator(1, nil).Next(), "bad_vibes"); !errors.Is(err, ErrUnknownReason) {
		t.Fatalf("err = %v, want ErrUnknownReason", err)
	}
}

// A conflicting duplicate is itself a valid order, with the same id and
// other content.
func TestAConflictingDuplicateIsValidAndDiffers(t *testing.T) {
	o := order.NewGenerator(3, nil).Next()
	c := Conflicting(o)
	if err := c.Validate(); err != nil {
		t.Fatalf("the conflicting order is invalid: %v", err)
	}
	if c.OrderID != o.OrderID || string(c.AppendJSON(nil)) == string(o.AppendJSON(nil)) {
		t.Fatalf("want the same id with other content:\n%s\n%s", o.AppendJSON(nil), c.AppendJSON(nil))
	}
	if o.Items[0].Quantity == c.Items[0].Quantity {
		t.Fatal("the original's items were changed in place")
	}
}
