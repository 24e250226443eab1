package order

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// validOrder is the PRD's example order, with milliseconds.
func validOrder() Order {
	return Order{
		OrderID:    "ORD-20250110-001",
		CustomerID: "CUST-12345",
		Items: []Item{
			{Name: "Burger", Quantity: 2, Price: 899},
			{Name: "Fries", Quantity: 1, Price: 349},
		},
		TotalAmount: 2147,
		Status:      StatusPending,
		CreatedAt:   time.Date(2025, 1, 10, 14, 30, 0, 123_000_000, time.UTC),
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(o *Order)
		want   Reason
		field  string
	}{
		{"the PRD example is valid", func(o *Order) {}, "", ""},
		{"every known status is valid", func(o *Order) { o.Status = StatusOutForDelivery }, "", ""},
		{"an id of exactly 50 characters is valid", func(o *Order) { o.OrderID = strings.Repeat("O", 50) }, "", ""},
		{"an id of 50 two-byte characters is valid", func(o *Order) { o.CustomerID = strings.Repeat("é", 50) }, "", ""},
		{"a name of exactly 100 characters is valid", func(o *Order) { o.Items[0].Name = strings.Repeat("n", 100) }, "", ""},
		{"a created_at in another zone is valid", func(o *Order) { o.CreatedAt = o.CreatedAt.In(time.FixedZone("X", 3600)) }, "", ""},
		{"the largest storable order is valid", func(o *Order) {
			o.Items = []Item{{Name: "Feast", Quantity: 1, Price: MaxMoney}}
			o.TotalAmount = MaxMoney
		}, "", ""},

		{"an empty order_id is an invalid id", func(o *Order) { o.OrderID = "" }, ReasonInvalidID, "order_id"},
		{"an order_id of 51 characters is an invalid id", func(o *Order) { o.OrderID = strings.Repeat("O", 51) }, ReasonInvalidID, "order_id"},
		{"a newline in customer_id is an invalid id", func(o *Order) { o.CustomerID = "CUST\n1" }, ReasonInvalidID, "customer_id"},
		{"a C1 control character in customer_id is an invalid id", func(o *Order) { o.CustomerID = "CUST\u00851" }, ReasonInvalidID, "customer_id"},
		{"invalid UTF-8 in order_id is refused", func(o *Order) { o.OrderID = "ORD-\xff" }, ReasonInvalidUTF8, "order_id"},
		{"a NUL in order_id is invalid text", func(o *Order) { o.OrderID = "ORD\x00" }, ReasonInvalidText, "order_id"},
		{"no items is refused", func(o *Order) { o.Items = nil }, ReasonNoItems, "items"},
		{"an empty item name is refused", func(o *Order) { o.Items[1].Name = "" }, ReasonInvalidItemName, "items[1].name"},
		{"an item name of spaces is refused", func(o *Order) { o.Items[1].Name = "   " }, ReasonInvalidItemName, "items[1].name"},
		{"an item name of 101 characters is refused", func(o *Order) { o.Items[0].Name = strings.Repeat("n", 101) }, ReasonInvalidItemName, "items[0].name"},
		{"a tab in an item name is refused", func(o *Order) { o.Items[0].Name = "Bur\tger" }, ReasonInvalidItemName, "items[0].name"},
		{"a NUL in an item name is invalid text", func(o *Order) { o.Items[0].Name = "\x00" }, ReasonInvalidText, "items[0].name"},
		{"invalid UTF-8 in an item name is refused", func(o *Order) { o.Items[0].Name = "\xc3(" }, ReasonInvalidUTF8, "items[0].name"},
		{"a quantity of 0 is refused", func(o *Order) { o.Items[0].Quantity = 0 }, ReasonInvalidQuantity, "items[0].quantity"},
		{"a quantity of -1 is refused", func(o *Order) { o.Items[0].Quantity = -1 }, ReasonInvalidQuantity, "items[0].quantity"},
		{"a quantity of 10001 is refused", func(o *Order) { o.Items[0].Quantity = MaxQuantity + 1 }, ReasonInvalidQuantity, "items[0].quantity"},
		{"a price of 0 is refused", func(o *Order) { o.Items[0].Price = 0 }, ReasonInvalidPrice, "items[0].price"},
		{"a negative price is refused", func(o *Order) { o.Items[0].Price = -899 }, ReasonInvalidPrice, "items[0].price"},
		{"a price beyond NUMERIC(10,2) is refused", func(o *Order) { o.Items[0].Price = MaxMoney + 1 }, ReasonInvalidPrice, "items[0].price"},
		{"a total of 0 is refused", func(o *Order) { o.TotalAmount = 0 }, ReasonInvalidTotal, "total_amount"},
		{"a negative total is refused", func(o *Order) { o.TotalAmount = -2147 }, ReasonInvalidTotal, "total_amount"},
		{"a total of 100000000.00 is too large", func(o *Order) { o.TotalAmount = 100_000_000_00 }, ReasonInvalidTotal, "total_amount"},
		{"a total one cent short is a mismatch", func(o *Order) { o.TotalAmount-- }, ReasonTotalMismatch, "total_amount"},
		{"a total one cent over is a mismatch", func(o *Order) { o.TotalAmount++ }, ReasonTotalMismatch, "total_amount"},
		{"items summing beyond the maximum are a mismatch", func(o *Order) {
			o.Items = []Item{{Name: "A", Quantity: 2, Price: MaxMoney}}
			o.TotalAmount = MaxMoney
		}, ReasonTotalMismatch, "total_amount"},
		{"an unknown status is refused", func(o *Order) { o.Status = "shipped" }, ReasonUnknownStatus, "status"},
		{"an empty status is unknown", func(o *Order) { o.Status = "" }, ReasonUnknownStatus, "status"},
		{"status is case sensitive", func(o *Order) { o.Status = "PENDING" }, ReasonUnknownStatus, "status"},
		{"a NUL in status is invalid text", func(o *Order) { o.Status = "pend\x00ing" }, ReasonInvalidText, "status"},
		{"the zero created_at is refused", func(o *Order) { o.CreatedAt = time.Time{} }, ReasonInvalidTimestamp, "created_at"},
		{"a created_at in 1999 is refused", func(o *Order) { o.CreatedAt = time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC) }, ReasonInvalidTimestamp, "created_at"},
		{"a created_at in 2101 is refused", func(o *Order) { o.CreatedAt = time.Date(2101, 1, 1, 0, 0, 0, 0, time.UTC) }, ReasonInvalidTimestamp, "created_at"},
		{"the year is judged in UTC", func(o *Order) {
			o.CreatedAt = time.Date(2100, 12, 31, 23, 0, 0, 0, time.FixedZone("W", -2*3600))
		}, ReasonInvalidTimestamp, "created_at"},
		{"the first failing field wins", func(o *Order) { o.OrderID = ""; o.Status = "?" }, ReasonInvalidID, "order_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOrder()
			tt.change(&o)
			err := o.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("Validate() = %v, want an *InvalidError", err)
			}
			if ie.Reason != tt.want || ie.Field != tt.field {
				t.Errorf("Validate() = %s on %q (%v), want %s on %q", ie.Reason, ie.Field, err, tt.want, tt.field)
			}
		})
	}
}

func TestValidateReturnsAnUntypedNil(t *testing.T) {
	// A nil *InvalidError in an error interface is not == nil; callers
	// write `if err != nil`, so Validate must return a plain nil.
	if err := validOrder().Validate(); err != nil {
		t.Fatalf("Validate() = %#v, want nil", err)
	}
}

func TestSum(t *testing.T) {
	tests := []struct {
		name   string
		items  []Item
		want   Money
		wantOK bool
	}{
		{"no items sum to zero", nil, 0, true},
		{"lines are quantity times price", []Item{{Quantity: 2, Price: 899}, {Quantity: 1, Price: 349}}, 2147, true},
		{"ten cents and twenty cents are thirty cents", []Item{{Quantity: 1, Price: 10}, {Quantity: 1, Price: 20}}, 30, true},
		{"a zero quantity adds nothing", []Item{{Quantity: 0, Price: math.MaxInt64}}, 0, true},
		{"negative lines are summed exactly", []Item{{Quantity: -2, Price: 100}, {Quantity: 1, Price: 50}}, -150, true},
		{"an overflowing line is reported", []Item{{Quantity: 2, Price: math.MaxInt64}}, 0, false},
		{"minus one times the smallest Money overflows", []Item{{Quantity: -1, Price: math.MinInt64}}, 0, false},
		{"an overflowing sum is reported", []Item{{Quantity: 1, Price: math.MaxInt64}, {Quantity: 1, Price: 1}}, 0, false},
		{"an underflowing sum is reported", []Item{{Quantity: 1, Price: math.MinInt64}, {Quantity: -1, Price: 1}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Order{Items: tt.items}.Sum()
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Sum() = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestStatusValid(t *testing.T) {
	for _, s := range []Status{StatusPending, StatusConfirmed, StatusPreparing, StatusReady, StatusOutForDelivery, StatusDelivered, StatusCancelled} {
		if !s.Valid() {
			t.Errorf("%q is not valid, want valid", s)
		}
	}
	for _, s := range []Status{"", "Pending", "shipped", "pending "} {
		if s.Valid() {
			t.Errorf("%q is valid, want not valid", s)
		}
	}
}

func TestInvalidErrorMessage(t *testing.T) {
	o := validOrder()
	o.TotalAmount = 2146
	want := "invalid order: total_mismatch: total_amount 21.46, sum of items 21.47"
	if err := o.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %q", err, want)
	}
	if got := (&InvalidError{Reason: ReasonNotJSON}).Error(); got != "invalid order: not_json" {
		t.Errorf("an error without detail reads %q", got)
	}
}

func TestDetailsQuoteOnlyAShortPrefixOfHostileText(t *testing.T) {
	o := validOrder()
	o.OrderID = strings.Repeat("é", 20) + "\n"
	err := o.Validate()
	if err == nil || len(err.Error()) > 200 || strings.Contains(err.Error(), "\n") {
		t.Errorf("Validate() = %q, want a short single-line message", err)
	}
	o = validOrder()
	o.Items[0].Name = "\x1b[31m" + strings.Repeat("é", 60)
	err = o.Validate()
	if err == nil || !strings.Contains(err.Error(), `"\x1b[31mé`) || !strings.Contains(err.Error(), `é"...`) {
		t.Errorf("Validate() = %q, want an escaped, cut-off name", err)
	}
}

func TestReasonOf(t *testing.T) {
	ie := &InvalidError{Reason: ReasonNoItems}
	tests := []struct {
		name string
		err  error
		want Reason
	}{
		{"nil has no reason", nil, ""},
		{"another error has no reason", errors.New("boom"), ""},
		{"an InvalidError gives its reason", ie, ReasonNoItems},
		{"a wrapped InvalidError gives its reason", fmt.Errorf("decode: %w", ie), ReasonNoItems},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReasonOf(tt.err); got != tt.want {
				t.Errorf("ReasonOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
