package order

import "errors"

// Reason names why an order was refused. The values are stable snake_case
// strings: they are written into dead-letter headers and used as Prometheus
// label values, so renaming one breaks dashboards and whoever reads the
// dead-letter topic. Add new ones; never change old ones.
type Reason string

// The reasons, roughly in the order Decode checks them.
const (
	// ReasonEmptyValue: a nil or empty message value, which Kafka uses as a
	// tombstone and which can never be an order.
	ReasonEmptyValue Reason = "empty_value"
	// ReasonInvalidUTF8: bytes that are not UTF-8. They are refused rather
	// than repaired because encoding/json and PostgreSQL would each silently
	// change them, and the stored order would differ from the one sent.
	ReasonInvalidUTF8 Reason = "invalid_utf8"
	// ReasonNotJSON: a syntax error, a top-level value that is not an
	// object, data after the object, nesting deeper than 32, or more than
	// 1 MiB.
	ReasonNotJSON Reason = "not_json"
	// ReasonTooDeep: valid JSON with arrays and objects nested deeper than
	// MaxDepth; no order needs more than 3 levels.
	ReasonTooDeep Reason = "too_deep"
	// ReasonDuplicateKey: an object (the order, an item, or any nested
	// one) with the same key twice. RFC 8259 leaves it undefined which value
	// wins, so such a message could mean different orders to different
	// readers; it is refused, as json/v2 refuses it.
	ReasonDuplicateKey Reason = "duplicate_key"
	// ReasonMissingField: a required field that is absent or null.
	ReasonMissingField Reason = "missing_field"
	// ReasonWrongType: a field of the wrong JSON type, e.g. quantity "2".
	ReasonWrongType Reason = "wrong_type"
	// ReasonInvalidID: order_id or customer_id empty, longer than 50
	// characters (VARCHAR(50)), or holding control characters.
	ReasonInvalidID Reason = "invalid_id"
	// ReasonNoItems: an empty items array.
	ReasonNoItems Reason = "no_items"
	// ReasonInvalidItemName: an item name that is empty, only white space,
	// longer than 100 characters, or holding control characters.
	ReasonInvalidItemName Reason = "invalid_item_name"
	// ReasonInvalidQuantity: a quantity that is not a whole number, not
	// positive, or more than MaxQuantity.
	ReasonInvalidQuantity Reason = "invalid_quantity"
	// ReasonInvalidPrice: a price that is not positive, has more than two
	// decimals or an exponent, or exceeds MaxMoney.
	ReasonInvalidPrice Reason = "invalid_price"
	// ReasonInvalidTotal: a total_amount that is not positive, has more than
	// two decimals or an exponent, or exceeds MaxMoney.
	ReasonInvalidTotal Reason = "invalid_total"
	// ReasonTotalMismatch: a total_amount that is not the exact sum of
	// quantity × price over the items. One cent off is a mismatch.
	ReasonTotalMismatch Reason = "total_mismatch"
	// ReasonUnknownStatus: a status outside the known set.
	ReasonUnknownStatus Reason = "unknown_status"
	// ReasonInvalidTimestamp: a created_at that is not RFC 3339, is the zero
	// time, or lies outside the years 2000 to 2100.
	ReasonInvalidTimestamp Reason = "invalid_timestamp"
	// ReasonInvalidText: text that PostgreSQL cannot store: a NUL character
	// (text and JSONB cannot hold U+0000) or an unpaired UTF-16 surrogate
	// escape such as "\ud800", which has no UTF-8 form at all.
	ReasonInvalidText Reason = "invalid_text"
)

// Reasons lists every Reason, in the order of their declarations. Metrics
// create a series for each at start, so that a reason is a 0 before it is a
// 1: a rate or an increase over a series that does not exist yet is no
// series at all, and an alert on it would never fire.
var Reasons = []Reason{
	ReasonEmptyValue, ReasonInvalidUTF8, ReasonNotJSON, ReasonTooDeep, ReasonDuplicateKey,
	ReasonMissingField, ReasonWrongType, ReasonInvalidID, ReasonNoItems, ReasonInvalidItemName,
	ReasonInvalidQuantity, ReasonInvalidPrice, ReasonInvalidTotal, ReasonTotalMismatch,
	ReasonUnknownStatus, ReasonInvalidTimestamp, ReasonInvalidText,
}

// InvalidError is the one error Validate and Decode return. Callers branch
// on Reason; Field and Detail are for people reading a log line or a
// dead-letter header.
type InvalidError struct {
	Reason Reason
	// Field is the path of the offending field, such as "items[1].price",
	// or "" when the message as a whole is at fault.
	Field string
	// Detail says what was wrong. It quotes at most a short prefix of the
	// offending value, because the value may be hostile and is written into
	// logs and headers.
	Detail string
}

// Error reads "invalid order: total_mismatch: total_amount 21.46, sum of
// items 21.47".
func (e *InvalidError) Error() string {
	if e.Detail == "" {
		return "invalid order: " + string(e.Reason)
	}
	return "invalid order: " + string(e.Reason) + ": " + e.Detail
}

// ReasonOf returns the Reason of the *InvalidError in err's chain, or "" for
// nil and for every other error.
func ReasonOf(err error) Reason {
	if e, ok := errors.AsType[*InvalidError](err); ok {
		return e.Reason
	}
	return ""
}

func invalid(r Reason, field, detail string) *InvalidError {
	return &InvalidError{Reason: r, Field: field, Detail: detail}
}
