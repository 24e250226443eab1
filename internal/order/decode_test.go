package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// prdOrder is the PRD's example message, with milliseconds.
const prdOrder = `{"order_id":"ORD-20250110-001","customer_id":"CUST-12345",` +
	`"items":[{"name":"Burger","quantity":2,"price":8.99},{"name":"Fries","quantity":1,"price":3.49}],` +
	`"total_amount":21.47,"status":"pending","created_at":"2025-01-10T14:30:00.123Z"}`

// with returns prdOrder with the first old replaced by new. It panics when
// old is absent, so that a typo in a table fails loudly instead of testing
// the unchanged order.
func with(old, new string) string {
	if !strings.Contains(prdOrder, old) {
		panic("prdOrder does not contain " + old)
	}
	return strings.Replace(prdOrder, old, new, 1)
}

// nested returns a value nested depth levels deep, e.g. [[[]]] for 3.
func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func TestDecodeRefusesWithTheRightReason(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  Reason
		field string
	}{
		{"an empty value is a tombstone", "", ReasonEmptyValue, ""},

		{"a byte that is not UTF-8 is refused", with(`"Burger"`, "\"Burg\xffer\""), ReasonInvalidUTF8, ""},
		{"an overlong UTF-8 encoding is refused", with(`"Burger"`, "\"\xc0\xafBurger\""), ReasonInvalidUTF8, ""},
		{"an encoded surrogate is refused", with(`"Burger"`, "\"\xed\xa0\x80\""), ReasonInvalidUTF8, ""},
		{"invalid UTF-8 outside any string is refused", prdOrder + "\xff", ReasonInvalidUTF8, ""},

		{"a key twice is ambiguous", with(`"status":"pending"`, `"status":"shipped","status":"confirmed"`), ReasonDuplicateKey, "status"},
		{"the items twice are ambiguous", with(`"total_amount"`, `"items":[{"name":"Cola","quantity":1,"price":21.47}],"total_amount"`), ReasonDuplicateKey, "items"},
		{"the items twice after a bad list are ambiguous", with(`"items"`, `"items":[7],"items"`), ReasonDuplicateKey, "items"},
		{"a key twice in an item is ambiguous", with(`"quantity":2`, `"quantity":2,"quantity":2`), ReasonDuplicateKey, "quantity"},
		{"a key twice in an unknown nested object is ambiguous", with(`"status"`, `"extra":{"a":1,"b":{"c":1,"c":1}},"status"`), ReasonDuplicateKey, "c"},
		{"a key spelt twice, once escaped, is ambiguous", with(`"status"`, `"\u0073tatus":"confirmed","status"`), ReasonDuplicateKey, "status"},
		{"a key twice among many is ambiguous", with(`"status"`, manyKeys(40)+`,"k7":0,"status"`), ReasonDuplicateKey, "k7"},
		{"a key twice then a syntax error is not JSON", with(`"status"`, `"a":1,"a":2,"status"`) + "x", ReasonNotJSON, ""},
		{"plain text is not JSON", "not json", ReasonNotJSON, ""},
		{"white space alone is not JSON", " \n\t ", ReasonNotJSON, ""},
		{"an array is not an order", `[1,2]`, ReasonNotJSON, ""},
		{"null is not an order", `null`, ReasonNotJSON, ""},
		{"a string is not an order", `"order"`, ReasonNotJSON, ""},
		{"a broken array is not JSON", `[1,`, ReasonNotJSON, ""},
		{"an empty object is a missing field, not bad JSON", `{}`, ReasonMissingField, "order_id"},
		{"data after the object is not JSON", prdOrder + `x`, ReasonNotJSON, ""},
		{"a second object is not JSON", prdOrder + `{}`, ReasonNotJSON, ""},
		{"a truncated object is not JSON", prdOrder[:len(prdOrder)-1], ReasonNotJSON, ""},
		{"a truncated string is not JSON", prdOrder[:20], ReasonNotJSON, ""},
		{"a truncated literal is not JSON", `{"a":nul`, ReasonNotJSON, ""},
		{"a misspelt literal is not JSON", `{"a":ture}`, ReasonNotJSON, ""},
		{"NaN is not JSON", with(`21.47`, `NaN`), ReasonNotJSON, ""},
		{"Infinity is not JSON", with(`21.47`, `Infinity`), ReasonNotJSON, ""},
		{"-Infinity is not JSON", with(`21.47`, `-Infinity`), ReasonNotJSON, ""},
		{"a leading zero is not JSON", with(`21.47`, `021.47`), ReasonNotJSON, ""},
		{"a leading plus is not JSON", with(`21.47`, `+21.47`), ReasonNotJSON, ""},
		{"a bare point is not JSON", with(`21.47`, `21.`), ReasonNotJSON, ""},
		{"an empty exponent is not JSON", with(`21.47`, `21e`), ReasonNotJSON, ""},
		{"a lone minus is not JSON", with(`21.47`, `-`), ReasonNotJSON, ""},
		{"a trailing comma is not JSON", with(`,"status"`, `,,"status"`), ReasonNotJSON, ""},
		{"a trailing comma in an array is not JSON", with(`3.49}]`, `3.49},]`), ReasonNotJSON, ""},
		{"a missing colon is not JSON", with(`"status":`, `"status" `), ReasonNotJSON, ""},
		{"a missing comma is not JSON", with(`,"status"`, ` "status"`), ReasonNotJSON, ""},
		{"a key that is not a string is not JSON", with(`"status":`, `status:`), ReasonNotJSON, ""},
		{"single quotes are not JSON", with(`"pending"`, `'pending'`), ReasonNotJSON, ""},
		{"a comment is not JSON", with(`{"order_id"`, `{/* hi */"order_id"`), ReasonNotJSON, ""},
		{"a raw newline in a string is not JSON", with(`"Burger"`, "\"Bur\nger\""), ReasonNotJSON, ""},
		{"a raw NUL byte in a string is not JSON", with(`"Burger"`, "\"Bur\x00ger\""), ReasonNotJSON, ""},
		{"an unknown escape is not JSON", with(`"Burger"`, `"Bur\xger"`), ReasonNotJSON, ""},
		{"a short unicode escape is not JSON", with(`"Burger"`, `"Bur\u12"`), ReasonNotJSON, ""},
		{"a syntax error wins over an earlier bad field", strings.Replace(with(`"pending"`, `"shipped"`), `.123Z"}`, `.123Z"`, 1), ReasonNotJSON, ""},
		{"valid JSON nested 33 deep is too deep", with(`"status"`, `"extra":`+nested(32)+`,"status"`), ReasonTooDeep, ""},
		{"valid JSON nested 50 deep is too deep", with(`"status"`, `"extra":`+nested(49)+`,"status"`), ReasonTooDeep, ""},
		{"nesting 33 deep then a syntax error is not JSON", with(`"status"`, `"extra":`+nested(32)+`,"status"`) + "x", ReasonNotJSON, ""},
		{"100k-deep arrays are not JSON", nested(100_000), ReasonNotJSON, ""},
		{"100k unclosed arrays are not JSON", strings.Repeat("[", 100_000), ReasonNotJSON, ""},
		{"100k-deep objects are not JSON", strings.Repeat(`{"a":`, 100_000), ReasonNotJSON, ""},
		{"an order larger than 1 MiB is not JSON", with(`{"order_id"`, `{"pad":"`+strings.Repeat("x", MaxMessageSize)+`","order_id"`), ReasonNotJSON, ""},

		{"a message without order_id misses a field", `{"order_id":"X"}`, ReasonMissingField, "customer_id"},
		{"an absent order_id is missing", with(`"order_id":"ORD-20250110-001",`, ``), ReasonMissingField, "order_id"},
		{"a null order_id is missing", with(`"ORD-20250110-001"`, `null`), ReasonMissingField, "order_id"},
		{"a null customer_id is missing", with(`"CUST-12345"`, `null`), ReasonMissingField, "customer_id"},
		{"keys are matched exactly", with(`"order_id"`, `"Order_ID"`), ReasonMissingField, "order_id"},
		{"absent items are missing", with(`"items":[{"name":"Burger","quantity":2,"price":8.99},{"name":"Fries","quantity":1,"price":3.49}],`, ``), ReasonMissingField, "items"},
		{"null items are missing", with(`[{"name":"Burger","quantity":2,"price":8.99},{"name":"Fries","quantity":1,"price":3.49}]`, `null`), ReasonMissingField, "items"},
		{"an absent total is missing", with(`"total_amount":21.47,`, ``), ReasonMissingField, "total_amount"},
		{"a null status is missing", with(`"pending"`, `null`), ReasonMissingField, "status"},
		{"an absent created_at is missing", with(`,"created_at":"2025-01-10T14:30:00.123Z"`, ``), ReasonMissingField, "created_at"},
		{"an item without a name misses a field", with(`"name":"Fries",`, ``), ReasonMissingField, "items[1].name"},
		{"a null quantity is missing", with(`"quantity":2`, `"quantity":null`), ReasonMissingField, "items[0].quantity"},
		{"an item without a price misses a field", with(`,"price":3.49`, ``), ReasonMissingField, "items[1].price"},

		{"a quantity in quotes is the wrong type", with(`"quantity":2`, `"quantity":"2"`), ReasonWrongType, "items[0].quantity"},
		{"items as an object are the wrong type", with(`[{"name":"Burger","quantity":2,"price":8.99},{"name":"Fries","quantity":1,"price":3.49}]`, `{"name":"Burger"}`), ReasonWrongType, "items"},
		{"items as a string are the wrong type", with(`[{"name":"Burger","quantity":2,"price":8.99},{"name":"Fries","quantity":1,"price":3.49}]`, `"Burger"`), ReasonWrongType, "items"},
		{"an item that is a string is the wrong type", with(`{"name":"Fries","quantity":1,"price":3.49}`, `"Fries"`), ReasonWrongType, "items[1]"},
		{"an item that is an array is the wrong type", with(`{"name":"Fries","quantity":1,"price":3.49}`, `[]`), ReasonWrongType, "items[1]"},
		{"a numeric order_id is the wrong type", with(`"ORD-20250110-001"`, `20250110001`), ReasonWrongType, "order_id"},
		{"a boolean customer_id is the wrong type", with(`"CUST-12345"`, `true`), ReasonWrongType, "customer_id"},
		{"a name that is a number is the wrong type", with(`"Burger"`, `42`), ReasonWrongType, "items[0].name"},
		{"a price in quotes is the wrong type", with(`8.99`, `"8.99"`), ReasonWrongType, "items[0].price"},
		{"a total in quotes is the wrong type", with(`21.47`, `"21.47"`), ReasonWrongType, "total_amount"},
		{"a status object is the wrong type", with(`"pending"`, `{"code":"pending"}`), ReasonWrongType, "status"},
		{"a numeric created_at is the wrong type", with(`"2025-01-10T14:30:00.123Z"`, `1736519400`), ReasonWrongType, "created_at"},

		{"an empty order_id is an invalid id", with(`"ORD-20250110-001"`, `""`), ReasonInvalidID, "order_id"},
		{"an order_id of 51 characters is an invalid id", with(`"ORD-20250110-001"`, `"`+strings.Repeat("9", 51)+`"`), ReasonInvalidID, "order_id"},
		{"an escaped newline in order_id is an invalid id", with(`"ORD-20250110-001"`, `"ORD\n1"`), ReasonInvalidID, "order_id"},
		{"a bell in customer_id is an invalid id", with(`"CUST-12345"`, `"CUST\u0007"`), ReasonInvalidID, "customer_id"},

		{"an empty items array has no items", with(`[{"name":"Burger","quantity":2,"price":8.99},{"name":"Fries","quantity":1,"price":3.49}]`, `[]`), ReasonNoItems, "items"},

		{"an empty name is refused", with(`"Burger"`, `""`), ReasonInvalidItemName, "items[0].name"},
		{"a name of 101 characters is refused", with(`"Burger"`, `"`+strings.Repeat("b", 101)+`"`), ReasonInvalidItemName, "items[0].name"},
		{"an escaped tab in a name is refused", with(`"Burger"`, `"Bur\tger"`), ReasonInvalidItemName, "items[0].name"},

		{"a quantity of 0 is refused", with(`"quantity":2`, `"quantity":0`), ReasonInvalidQuantity, "items[0].quantity"},
		{"a quantity of -1 is refused", with(`"quantity":2`, `"quantity":-1`), ReasonInvalidQuantity, "items[0].quantity"},
		{"a quantity of 2.5 is refused", with(`"quantity":2`, `"quantity":2.5`), ReasonInvalidQuantity, "items[0].quantity"},
		{"a quantity of 2.01 is refused", with(`"quantity":2`, `"quantity":2.01`), ReasonInvalidQuantity, "items[0].quantity"},
		{"a quantity with an exponent is refused", with(`"quantity":2`, `"quantity":1e2`), ReasonInvalidQuantity, "items[0].quantity"},
		{"a quantity of 10001 is refused", with(`"quantity":2`, `"quantity":10001`), ReasonInvalidQuantity, "items[0].quantity"},
		{"a quantity of twenty digits is refused", with(`"quantity":2`, `"quantity":99999999999999999999`), ReasonInvalidQuantity, "items[0].quantity"},

		{"a price of 0 is refused", with(`8.99`, `0`), ReasonInvalidPrice, "items[0].price"},
		{"a negative price is refused", with(`8.99`, `-8.99`), ReasonInvalidPrice, "items[0].price"},
		{"a price of 0.001 is refused", with(`8.99`, `0.001`), ReasonInvalidPrice, "items[0].price"},
		{"a price of 8.999 is refused", with(`8.99`, `8.999`), ReasonInvalidPrice, "items[0].price"},
		{"a price with an exponent is refused", with(`8.99`, `899e-2`), ReasonInvalidPrice, "items[0].price"},
		{"a price beyond NUMERIC(10,2) is refused", with(`8.99`, `100000000.00`), ReasonInvalidPrice, "items[0].price"},
		{"a price beyond int64 is refused", with(`8.99`, `99999999999999999999.99`), ReasonInvalidPrice, "items[0].price"},
		{"the first bad item wins", with(`3.49`, `0`), ReasonInvalidPrice, "items[1].price"},

		{"a total of 0 is refused", with(`21.47`, `0`), ReasonInvalidTotal, "total_amount"},
		{"a negative total is refused", with(`21.47`, `-21.47`), ReasonInvalidTotal, "total_amount"},
		{"a total with three decimals is refused", with(`21.47`, `21.470`), ReasonInvalidTotal, "total_amount"},
		{"a total with an exponent is refused", with(`21.47`, `2.147e1`), ReasonInvalidTotal, "total_amount"},
		{"a total of 100000000.00 is too large", with(`21.47`, `100000000.00`), ReasonInvalidTotal, "total_amount"},
		{"a total beyond int64 is refused", with(`21.47`, `1234567890123456789012`), ReasonInvalidTotal, "total_amount"},

		{"a total one cent short is a mismatch", with(`21.47`, `21.46`), ReasonTotalMismatch, "total_amount"},
		{"a total one cent over is a mismatch", with(`21.47`, `21.48`), ReasonTotalMismatch, "total_amount"},

		{"an unknown status is refused", with(`"pending"`, `"shipped"`), ReasonUnknownStatus, "status"},
		{"an upper-case status is unknown", with(`"pending"`, `"PENDING"`), ReasonUnknownStatus, "status"},

		{"a timestamp in words is refused", with(`2025-01-10T14:30:00.123Z`, `yesterday`), ReasonInvalidTimestamp, "created_at"},
		{"a timestamp without a zone is refused", with(`2025-01-10T14:30:00.123Z`, `2025-01-10T14:30:00.123`), ReasonInvalidTimestamp, "created_at"},
		{"a space instead of T is refused", with(`2025-01-10T14:30:00.123Z`, `2025-01-10 14:30:00.123Z`), ReasonInvalidTimestamp, "created_at"},
		{"lower-case t and z are refused", with(`2025-01-10T14:30:00.123Z`, `2025-01-10t14:30:00.123z`), ReasonInvalidTimestamp, "created_at"},
		{"a date alone is refused", with(`2025-01-10T14:30:00.123Z`, `2025-01-10`), ReasonInvalidTimestamp, "created_at"},
		{"February 30 is refused", with(`2025-01-10`, `2025-02-30`), ReasonInvalidTimestamp, "created_at"},
		{"February 29 outside a leap year is refused", with(`2025-01-10`, `2100-02-29`), ReasonInvalidTimestamp, "created_at"},
		{"hour 24 is refused", with(`T14:`, `T24:`), ReasonInvalidTimestamp, "created_at"},
		{"a leap second is refused", with(`:00.123Z`, `:60.123Z`), ReasonInvalidTimestamp, "created_at"},
		{"an empty fraction is refused", with(`00.123Z`, `00.Z`), ReasonInvalidTimestamp, "created_at"},
		{"a ten-digit fraction is refused", with(`00.123Z`, `00.1234567890Z`), ReasonInvalidTimestamp, "created_at"},
		{"an offset hour of 24 is refused", with(`00.123Z`, `00.123+24:00`), ReasonInvalidTimestamp, "created_at"},
		{"an offset without a colon is refused", with(`00.123Z`, `00.123+0200`), ReasonInvalidTimestamp, "created_at"},
		{"a Unix time in a string is refused", with(`2025-01-10T14:30:00.123Z`, `1736519400`), ReasonInvalidTimestamp, "created_at"},
		{"the zero time is refused", with(`2025-01-10T14:30:00.123Z`, `0001-01-01T00:00:00Z`), ReasonInvalidTimestamp, "created_at"},
		{"a time in 1999 is refused", with(`2025-01-10T14:30:00.123Z`, `1999-12-31T23:59:59Z`), ReasonInvalidTimestamp, "created_at"},
		{"a time in 2101 is refused", with(`2025-01-10T14:30:00.123Z`, `2101-01-01T00:00:00Z`), ReasonInvalidTimestamp, "created_at"},
		{"a time that is 2101 in UTC is refused", with(`2025-01-10T14:30:00.123Z`, `2100-12-31T23:00:00-02:00`), ReasonInvalidTimestamp, "created_at"},
		{"a lone surrogate in created_at is invalid text", with(`2025-01-10T14:30:00.123Z`, `\ud800`), ReasonInvalidText, "created_at"},

		{"an escaped NUL as the name is invalid text", with(`"Burger"`, `"\u0000"`), ReasonInvalidText, "items[0].name"},
		{"an escaped NUL inside a name is invalid text", with(`"Burger"`, `"Bur\u0000ger"`), ReasonInvalidText, "items[0].name"},
		{"an escaped NUL in order_id is invalid text", with(`"ORD-20250110-001"`, `"ORD\u0000"`), ReasonInvalidText, "order_id"},
		{"an escaped NUL in status is invalid text", with(`"pending"`, `"pend\u0000ing"`), ReasonInvalidText, "status"},
		{"a lone high surrogate in a name is invalid text", with(`"Burger"`, `"Burger\ud83c"`), ReasonInvalidText, "items[0].name"},
		{"a high surrogate before a letter is invalid text", with(`"Burger"`, `"\ud83c\u0041"`), ReasonInvalidText, "items[0].name"},
		{"a lone low surrogate in customer_id is invalid text", with(`"CUST-12345"`, `"\udf54"`), ReasonInvalidText, "customer_id"},
		{"a lone surrogate in order_id is invalid text", with(`"ORD-20250110-001"`, `"\udbff"`), ReasonInvalidText, "order_id"},
		{"a lone surrogate in status is invalid text", with(`"pending"`, `"\ud800x"`), ReasonInvalidText, "status"},

		{"a wrong type wins over an earlier invalid value", strings.Replace(with(`"ORD-20250110-001"`, `""`), `"pending"`, `7`, 1), ReasonWrongType, "status"},
		{"an earlier field wins over a later one", strings.Replace(with(`"pending"`, `7`), `"CUST-12345"`, `null`, 1), ReasonMissingField, "customer_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			o, err := Decode([]byte(tt.in))
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("Decode took %v", d)
			}
			ie, ok := errors.AsType[*InvalidError](err)
			if !ok {
				t.Fatalf("Decode() = %+v, %v; want an *InvalidError", o, err)
			}
			if ie.Reason != tt.want || ie.Field != tt.field {
				t.Errorf("Decode() = %s on %q (%v), want %s on %q", ie.Reason, ie.Field, ie, tt.want, tt.field)
			}
			if !reflect.DeepEqual(o, Order{}) {
				t.Errorf("Decode() returned %+v with its error, want the zero Order", o)
			}
		})
	}
}

func TestDecodeRefusesANilValue(t *testing.T) {
	_, err := Decode(nil)
	if r := ReasonOf(err); r != ReasonEmptyValue {
		t.Errorf("Decode(nil) reason %q (%v), want %q", r, err, ReasonEmptyValue)
	}
}

func TestDecodeAccepts(t *testing.T) {
	prd := validOrder()
	tests := []struct {
		name   string
		in     string
		change func(o *Order) // applied to the PRD order to get the expected one
	}{
		{"the PRD example", prdOrder, func(o *Order) {}},
		{"the PRD example without milliseconds", with(`00.123Z`, `00Z`), func(o *Order) { o.CreatedAt = o.CreatedAt.Truncate(time.Second) }},
		{"white space around and inside", " \r\n\t" + indented(prdOrder) + "\n ", func(o *Order) {}},
		{"unknown fields anywhere", with(`"status"`, `"coupon":{"code":"X","ids":[1,2.5e3,true,null,{}]},"status"`), func(o *Order) {}},
		{"unknown fields in an item", with(`"name":"Fries"`, `"note":["no salt"],"name":"Fries","size":"L"`), func(o *Order) {}},
		{"fields in another order", `{"created_at":"2025-01-10T14:30:00.123Z","status":"pending","total_amount":21.47,` +
			`"items":[{"price":8.99,"quantity":2,"name":"Burger"},{"price":3.49,"name":"Fries","quantity":1}],` +
			`"customer_id":"CUST-12345","order_id":"ORD-20250110-001"}`, func(o *Order) {}},
		{"a quantity written 2.0", with(`"quantity":2`, `"quantity":2.0`), func(o *Order) {}},
		{"a quantity written 2.00", with(`"quantity":2`, `"quantity":2.00`), func(o *Order) {}},
		{"a price with one decimal", strings.Replace(with(`8.99}`, `9.1}`), `21.47`, `21.69`, 1), func(o *Order) { o.Items[0].Price = 910; o.TotalAmount = 2169 }},
		{"whole-number amounts", strings.Replace(with(`8.99}`, `9}`), `21.47`, `21.49`, 1), func(o *Order) { o.Items[0].Price = 900; o.TotalAmount = 2149 }},
		{"a total with one decimal", strings.Replace(with(`3.49}`, `3.52}`), `21.47`, `21.5`, 1), func(o *Order) { o.Items[1].Price = 352; o.TotalAmount = 2150 }},
		{"escaped text", with(`"Burger"`, `"Caf\u00e9 \"Burger\" \\ \/ \ud83c\udf54"`), func(o *Order) { o.Items[0].Name = `Café "Burger" \ / 🍔` }},
		{"upper-case hex escapes", with(`"Burger"`, `"Caf\u00E9 \uD83C\uDF54"`), func(o *Order) { o.Items[0].Name = "Café 🍔" }},
		{"an escaped key", with(`"order_id"`, `"order\u005fid"`), func(o *Order) {}},
		{"a key with a lone surrogate as an unknown field", with(`"status"`, `"\ud800":1,"status"`), func(o *Order) {}},
		{"an escaped timestamp", with(`2025-01-10T`, `2025-01-10\u0054`), func(o *Order) {}},
		{"a timestamp with an offset, returned in UTC", with(`14:30:00.123Z`, `16:30:00.123+02:00`), func(o *Order) {}},
		{"a timestamp with a negative offset", with(`14:30:00.123Z`, `09:00:00.123-05:30`), func(o *Order) {}},
		{"a timestamp with nanoseconds, cut to microseconds", with(`00.123Z`, `00.123456789Z`), func(o *Order) { o.CreatedAt = o.CreatedAt.Add(456 * time.Microsecond) }},
		{"the first moment of 2000", with(`2025-01-10T14:30:00.123Z`, `2000-01-01T00:00:00Z`), func(o *Order) { o.CreatedAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"the last microsecond of 2100", with(`2025-01-10T14:30:00.123Z`, `2100-12-31T23:59:59.999999Z`), func(o *Order) { o.CreatedAt = time.Date(2100, 12, 31, 23, 59, 59, 999_999_000, time.UTC) }},
		{"February 29 of a leap year", with(`2025-01-10`, `2024-02-29`), func(o *Order) { o.CreatedAt = time.Date(2024, 2, 29, 14, 30, 0, 123_000_000, time.UTC) }},
		{"nesting 32 deep", with(`"status"`, `"extra":`+nested(31)+`,"status"`), func(o *Order) {}},
		{"an empty unknown object and array", with(`"status"`, `"a":{},"b":[],"c":[ ],"d":{ },"status"`), func(o *Order) {}},
		{"negative exponents in unknown fields", with(`"status"`, `"a":-0.5E-7,"b":0e+1,"status"`), func(o *Order) {}},
		{"ids of 50 characters, some of two bytes", strings.Replace(with(`"ORD-20250110-001"`, `"`+strings.Repeat("9", 50)+`"`), `"CUST-12345"`, `"`+strings.Repeat("é", 50)+`"`, 1), func(o *Order) {
			o.OrderID, o.CustomerID = strings.Repeat("9", 50), strings.Repeat("é", 50)
		}},
		{"many items", manyItems(40), func(o *Order) {
			o.Items = nil
			for range 40 {
				o.Items = append(o.Items, Item{Name: "Cola", Quantity: 1, Price: 199})
			}
			o.TotalAmount = 40 * 199
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode() error %v", err)
			}
			want := prd
			want.Items = append([]Item(nil), prd.Items...)
			tt.change(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Decode() =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func indented(s string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "\r", "\t "); err != nil {
		panic(err)
	}
	return b.String()
}

func manyItems(n int) string {
	items := strings.TrimSuffix(strings.Repeat(`{"name":"Cola","quantity":1,"price":1.99},`, n), ",")
	return strings.Replace(with(`[{"name":"Burger","quantity":2,"price":8.99},{"name":"Fries","quantity":1,"price":3.49}]`, `[`+items+`]`),
		`21.47`, (Money(n) * 199).String(), 1)
}

func TestDecodedStringsDoNotAliasTheMessage(t *testing.T) {
	msg := []byte(with(`"Burger"`, `"Veggie Burger Deluxe"`))
	o, err := Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range msg {
		msg[i] = 'x'
	}
	if o.OrderID != "ORD-20250110-001" || o.CustomerID != "CUST-12345" || o.Items[0].Name != "Veggie Burger Deluxe" || o.Status != StatusPending {
		t.Errorf("the order changed with the message buffer: %+v", o)
	}
}

func TestRoundTrip(t *testing.T) {
	orders := []Order{validOrder()}
	odd := validOrder()
	odd.OrderID = `ORD "quoted" \ back/slash`
	odd.CustomerID = "客户-🍔-</script>&"
	odd.Items[0].Name = "Crème brûlée \u2028 with ümlauts"
	odd.CreatedAt = time.Date(2100, 12, 31, 23, 59, 59, 999_999_000, time.UTC)
	odd.Status = StatusOutForDelivery
	orders = append(orders, odd)
	g := NewGenerator(42, nil)
	for range 1000 {
		orders = append(orders, g.Next())
	}
	for _, o := range orders {
		data := o.AppendJSON(nil)
		got, err := Decode(data)
		if err != nil {
			t.Fatalf("Decode(%s) error %v", data, err)
		}
		if !reflect.DeepEqual(got, o) {
			t.Fatalf("round trip of %s gave\n%+v\nwant\n%+v", data, got, o)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name   string
		change func(o *Order)
		want   string
	}{
		{"the PRD order is written in the PRD's field order", func(o *Order) {}, prdOrder},
		{"created_at is written in UTC", func(o *Order) { o.CreatedAt = o.CreatedAt.In(time.FixedZone("X", -5*3600)) }, prdOrder},
		{"whole seconds keep three decimals", func(o *Order) { o.CreatedAt = o.CreatedAt.Truncate(time.Second) }, with(`00.123Z`, `00.000Z`)},
		{"microseconds are kept", func(o *Order) { o.CreatedAt = o.CreatedAt.Add(456 * time.Microsecond) }, with(`00.123Z`, `00.123456Z`)},
		{"nanoseconds are cut to microseconds", func(o *Order) { o.CreatedAt = o.CreatedAt.Add(456_789) }, with(`00.123Z`, `00.123456Z`)},
		{"quotes, backslashes and controls are escaped", func(o *Order) { o.Items[0].Name = "a\"b\\c\nd\re\tf\x01g\x1fh" },
			with(`"Burger"`, `"a\"b\\c\nd\re\tf\u0001g\u001fh"`)},
		{"non-ASCII text is written as it is", func(o *Order) { o.Items[0].Name = "Café 🍔 <&>" }, with(`"Burger"`, `"Café 🍔 <&>"`)},
		{"invalid UTF-8 becomes U+FFFD", func(o *Order) { o.Items[0].Name = "Bur\xffger\xc3" }, with(`"Burger"`, `"Bur\ufffdger\ufffd"`)},
		{"no items are an empty array", func(o *Order) { o.Items = nil }, with(`[{"name":"Burger","quantity":2,"price":8.99},{"name":"Fries","quantity":1,"price":3.49}]`, `[]`)},
		{"whole amounts keep two decimals", func(o *Order) { o.TotalAmount = 2100 }, with(`21.47`, `21.00`)},
		{"a year past 9999 is still written", func(o *Order) { o.CreatedAt = time.Date(12345, 1, 2, 3, 4, 5, 0, time.UTC) },
			with(`2025-01-10T14:30:00.123Z`, `12345-01-02T03:04:05.000000Z`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOrder()
			tt.change(&o)
			prefix := []byte("prefix")
			got := o.AppendJSON(prefix)
			if !bytes.HasPrefix(got, prefix) || string(got[len(prefix):]) != tt.want {
				t.Errorf("AppendJSON() =\n%s\nwant\n%s%s", got, prefix, tt.want)
			}
			if !json.Valid(got[len(prefix):]) {
				t.Errorf("AppendJSON() wrote invalid JSON: %s", got)
			}
		})
	}
}

func TestAppendJSONAgreesWithEncodingJSON(t *testing.T) {
	o := validOrder()
	o.Items[0].Name = "Crème \"brûlée\"\n\x01 \\ 🍔"
	var back struct {
		OrderID string `json:"order_id"`
		Items   []struct {
			Name string `json:"name"`
		} `json:"items"`
		CreatedAt time.Time `json:"created_at"`
	}
	if err := json.Unmarshal(o.AppendJSON(nil), &back); err != nil {
		t.Fatal(err)
	}
	if back.Items[0].Name != o.Items[0].Name || !back.CreatedAt.Equal(o.CreatedAt) || back.OrderID != o.OrderID {
		t.Errorf("encoding/json read back %+v", back)
	}
}

func TestMarshalJSON(t *testing.T) {
	got, err := json.Marshal(validOrder())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != prdOrder {
		t.Errorf("json.Marshal =\n%s\nwant\n%s", got, prdOrder)
	}
	var o Order
	if err := json.Unmarshal(got, &o); err != nil || !reflect.DeepEqual(o, validOrder()) {
		t.Errorf("json.Unmarshal of the output = %+v, %v", o, err)
	}
}

func TestItemsJSON(t *testing.T) {
	tests := []struct {
		name  string
		items []Item
		want  string
	}{
		{"items are written as the PRD shows them", validOrder().Items, `[{"name":"Burger","quantity":2,"price":8.99},{"name":"Fries","quantity":1,"price":3.49}]`},
		{"no items are an empty array, never null", nil, `[]`},
		{"text is escaped", []Item{{Name: `"q"`, Quantity: 1, Price: 100}}, `[{"name":"\"q\"","quantity":1,"price":1.00}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Order{Items: tt.items}).ItemsJSON(); string(got) != tt.want {
				t.Errorf("ItemsJSON() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseTimeAgreesWithTimePackage(t *testing.T) {
	// RFC 3339 allows offset minutes up to 59 only; time.Parse takes 60.
	stricter := map[string]bool{"2025-01-10T14:30:00+01:60": true}
	inputs := []string{
		"2025-01-10T14:30:00Z", "2025-01-10T14:30:00.1Z", "2025-01-10T14:30:00.123456789Z",
		"2025-01-10T14:30:00+00:00", "2025-01-10T14:30:00-00:00", "2025-01-10T14:30:00.5+23:59",
		"2024-02-29T00:00:00Z", "2000-02-29T12:00:00Z", "1900-02-28T00:00:00Z", "2025-12-31T23:59:59.999-12:00",
		"2025-04-30T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
		"2025-04-31T00:00:00Z", "1900-02-29T00:00:00Z", "2025-13-01T00:00:00Z", "2025-00-01T00:00:00Z",
		"2025-01-00T00:00:00Z", "2025-01-10T14:60:00Z", "2025-01-10T14:30:00+01:60", "2025-01-1xT00:00:00Z",
		"2025-01-10T14:30:00+01", "2025-01-10T14:30:00ZZ", "2025-01-10T14:30:00.Z", "x025-01-10T14:30:00Z",
	}
	for _, in := range inputs {
		t.Run(in, func(t *testing.T) {
			got, ok := parseTime([]byte(in))
			want, err := time.Parse(time.RFC3339Nano, in)
			if ok != (err == nil) && !(stricter[in] && !ok) {
				t.Fatalf("parseTime ok=%v, time.Parse error %v", ok, err)
			}
			if ok && !got.Equal(want.Truncate(time.Microsecond)) {
				t.Errorf("parseTime = %v, time.Parse = %v", got, want)
			}
		})
	}
}

// manyKeys is n distinct keys k0 ... with number values, joined by commas.
func manyKeys(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	return strings.Join(keys, ",")
}

func TestAWordThatIsNotJSONIsNamedInTheError(t *testing.T) {
	tests := []struct{ in, want string }{
		{"not json", `"not" at byte 0 is not a JSON value`},
		{`{"a":ture}`, `"ture" at byte 5 is not a JSON value`},
		{`{"a":nul`, `"nul" at byte 5 is not a JSON value`},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Decode(%q) = %v, want an error saying %s", tt.in, err, tt.want)
		}
	}
}
