package lab

// Messages the user sends on purpose: an order broken in a chosen way, an
// exact copy of an order already sent, and an order that reuses an id with
// other content.

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"foodpipe/internal/order"
)

// Reasons lists the refusal reasons the lab can produce on purpose, each
// with bytes that make order.Decode give exactly it.
func Reasons() []order.Reason {
	return slices.Sorted(func(yield func(order.Reason) bool) {
		for r := range breakers {
			if !yield(r) {
				return
			}
		}
	})
}

// breakers turn a valid order into a message refused for one reason. Some
// change the order and encode it (the encoder writes what it is given);
// others edit the encoded bytes, for faults no Order can hold.
var breakers = map[order.Reason]func(o order.Order) []byte{
	order.ReasonEmptyValue: func(order.Order) []byte { return nil },
	order.ReasonInvalidUTF8: func(o order.Order) []byte {
		// The encoder would write U+FFFD for a bad byte, so the byte goes in after.
		return replaceField(o, `"customer_id":"`, `"customer_id":"`+"\xff")
	},
	order.ReasonNotJSON: func(o order.Order) []byte {
		b := o.AppendJSON(nil)
		return b[:len(b)-1] // the closing brace cut off
	},
	order.ReasonTooDeep: func(o order.Order) []byte {
		deep := strings.Repeat("[", order.MaxDepth+1) + strings.Repeat("]", order.MaxDepth+1)
		return replaceField(o, `"status":`, `"extra":`+deep+`,"status":`)
	},
	order.ReasonDuplicateKey: func(o order.Order) []byte {
		return replaceField(o, `"status":`, `"status":"pending","status":`)
	},
	order.ReasonMissingField: func(o order.Order) []byte {
		return replaceField(o, `,"status":"`+string(o.Status)+`"`, ``)
	},
	order.ReasonWrongType: func(o order.Order) []byte {
		return replaceField(o, `"customer_id":"`+o.CustomerID+`"`, `"customer_id":7`)
	},
	order.ReasonInvalidID:       func(o order.Order) []byte { o.OrderID = ""; return o.AppendJSON(nil) },
	order.ReasonNoItems:         func(o order.Order) []byte { o.Items = nil; return o.AppendJSON(nil) },
	order.ReasonInvalidItemName: func(o order.Order) []byte { o.Items[0].Name = "   "; return o.AppendJSON(nil) },
	order.ReasonInvalidQuantity: func(o order.Order) []byte { o.Items[0].Quantity = 0; return o.AppendJSON(nil) },
	order.ReasonInvalidPrice:    func(o order.Order) []byte { o.Items[0].Price = 0; return o.AppendJSON(nil) },
	order.ReasonInvalidTotal:    func(o order.Order) []byte { o.TotalAmount = 0; return o.AppendJSON(nil) },
	order.ReasonTotalMismatch:   func(o order.Order) []byte { o.TotalAmount++; return o.AppendJSON(nil) },
	order.ReasonUnknownStatus:   func(o order.Order) []byte { o.Status = "teleported"; return o.AppendJSON(nil) },
	order.ReasonInvalidTimestamp: func(o order.Order) []byte {
		o.CreatedAt = time.Date(1999, 12, 31, 23, 59, 0, 0, time.UTC)
		return o.AppendJSON(nil)
	},
	order.ReasonInvalidText: func(o order.Order) []byte { o.Items[0].Name += "\x00"; return o.AppendJSON(nil) },
}

// Invalid is o broken so that it is refused for reason r.
func Invalid(o order.Order, r order.Reason) ([]byte, error) {
	b, ok := breakers[r]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownReason, r)
	}
	o.Items = slices.Clone(o.Items) // the breakers change items; the caller's order stays as it was
	return b(o), nil
}

// Conflicting is o with the same id and other content: one more of its
// first item, and the total to match, so that it is a valid order which
// the store must refuse to put over the one it has.
func Conflicting(o order.Order) order.Order {
	o.Items = slices.Clone(o.Items)
	o.Items[0].Quantity++
	o.TotalAmount += o.Items[0].Price
	return o
}

func replaceField(o order.Order, old, repl string) []byte {
	b := o.AppendJSON(nil)
	if !bytes.Contains(b, []byte(old)) {
		// The generator writes every field; reaching this is a bug here.
		panic("lab: no " + strconv.Quote(old) + " in " + string(b))
	}
	return bytes.Replace(b, []byte(old), []byte(repl), 1)
}
