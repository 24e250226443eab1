package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

var knownReasons = map[Reason]bool{
	ReasonEmptyValue: true, ReasonInvalidUTF8: true, ReasonNotJSON: true, ReasonMissingField: true,
	ReasonWrongType: true, ReasonInvalidID: true, ReasonNoItems: true, ReasonInvalidItemName: true,
	ReasonInvalidQuantity: true, ReasonInvalidPrice: true, ReasonInvalidTotal: true,
	ReasonTotalMismatch: true, ReasonUnknownStatus: true, ReasonInvalidTimestamp: true, ReasonInvalidText: true,
	ReasonDuplicateKey: true, ReasonTooDeep: true,
}

// FuzzDecode checks that Decode never panics, that what it accepts is
// valid JSON to json/v2 (which refuses a name twice in one object), is a
// valid order, survives AppendJSON and Decode unchanged, and reads the same
// as encoding/json reads it; that it calls a message not_json exactly when
// encoding/json finds a syntax error, or the message is within the limits
// but not an object; and that it calls it duplicate_key exactly when the
// syntax is fine and json/v2 still refuses it.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		prdOrder,
		string(NewGenerator(1, nil).Next().AppendJSON(nil)),
		"",
		"null",
		"{}",
		"[]",
		`{"order_id":"X"}`,
		"\xff\xfe{}",
		nested(40),
		strings.Repeat(`{"a":`, 40),
		with(`21.47`, `NaN`),
		with(`21.47`, `1e999`),
		with(`21.47`, `21.470`),
		with(`21.47`, `-0`),
		with(`8.99`, `0.001`),
		with(`"quantity":2`, `"quantity":2.0`),
		with(`"quantity":2`, `"quantity":2.5`),
		with(`"quantity":2`, `"quantity":"2"`),
		with(`"Burger"`, `"\u0000"`),
		with(`"Burger"`, `"\ud83c\udf54"`),
		with(`"Burger"`, `"\ud83c"`),
		with(`"Burger"`, `null`),
		with(`"pending"`, `"shipped"`),
		with(`"status"`, `"\u0073tatus":"confirmed","status"`),
		with(`14:30:00.123Z`, `16:30:00.123+02:00`),
		with(`2025-01-10`, `2025-02-29`),
		prdOrder + " x",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Decode(data)
		if err != nil {
			checkRefusal(t, data, o, err)
			return
		}
		if !validV2(data) {
			t.Fatalf("Decode accepted what json/v2 calls invalid: %q", data)
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("Decode accepted an order that fails Validate: %v", err)
		}
		again, err := Decode(o.AppendJSON(nil))
		if err != nil || !reflect.DeepEqual(again, o) {
			t.Fatalf("round trip of %+v gave %+v, %v", o, again, err)
		}
		compareWithEncodingJSON(t, data, o)
	})
}

func checkRefusal(t *testing.T, data []byte, o Order, err error) {
	t.Helper()
	var ie *InvalidError
	if !errors.As(err, &ie) || !knownReasons[ie.Reason] || ie.Error() == "" {
		t.Fatalf("Decode error %#v is not an *InvalidError with a known reason", err)
	}
	if !reflect.DeepEqual(o, Order{}) {
		t.Fatalf("Decode returned %+v with its error", o)
	}
	if len(data) == 0 || len(data) > MaxMessageSize || !utf8.Valid(data) {
		return
	}
	valid := json.Valid(data)
	inLimits := valid && isObject(data) && jsonDepth(data) <= MaxDepth
	switch {
	case !valid && ie.Reason != ReasonNotJSON:
		t.Fatalf("encoding/json finds a syntax error, Decode says %v: %q", err, data)
	case valid && ie.Reason == ReasonNotJSON && inLimits:
		t.Fatalf("Decode calls valid JSON %v: %q", err, data)
	case inLimits && !validV2(data) && ie.Reason != ReasonDuplicateKey:
		t.Fatalf("json/v2 refuses a name twice in one object, Decode says %v: %q", err, data)
	case validV2(data) && ie.Reason == ReasonDuplicateKey:
		t.Fatalf("json/v2 finds no name twice, Decode says %v: %q", err, data)
	case valid && isObject(data) && jsonDepth(data) > MaxDepth && ie.Reason != ReasonTooDeep:
		t.Fatalf("valid JSON nested %d deep, Decode says %v: %q", jsonDepth(data), err, data)
	case ie.Reason == ReasonTooDeep && (!valid || jsonDepth(data) <= MaxDepth):
		t.Fatalf("Decode says too_deep of what is not valid JSON nested deeper than %d: %q", MaxDepth, data)
	}
}

// validV2 is json/v2's verdict on data, which is known to be valid UTF-8:
// an escaped lone surrogate, which v2 alone refuses, is Decode's
// invalid_text where it matters and is left to the other checks.
func validV2(data []byte) bool {
	return jsontext.Value(data).IsValid(jsontext.AllowInvalidUTF8(true))
}

func compareWithEncodingJSON(t *testing.T, data []byte, o Order) {
	t.Helper()
	var m struct {
		OrderID    any `json:"order_id"`
		CustomerID any `json:"customer_id"`
		Items      []struct {
			Name     string      `json:"name"`
			Quantity json.Number `json:"quantity"`
			Price    json.Number `json:"price"`
		} `json:"items"`
		TotalAmount json.Number `json:"total_amount"`
		Status      string      `json:"status"`
		CreatedAt   string      `json:"created_at"`
	}
	// A map keeps keys exact; the struct fields are read from it so that
	// encoding/json's case-insensitive matching plays no part.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("encoding/json cannot read an accepted message: %v", err)
	}
	exact, _ := json.Marshal(map[string]json.RawMessage{
		"order_id": raw["order_id"], "customer_id": raw["customer_id"], "items": raw["items"],
		"total_amount": raw["total_amount"], "status": raw["status"], "created_at": raw["created_at"],
	})
	dec := json.NewDecoder(bytes.NewReader(exact))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("encoding/json cannot read the fields of an accepted message: %v", err)
	}
	if m.OrderID != o.OrderID || m.CustomerID != o.CustomerID || m.Status != string(o.Status) {
		t.Fatalf("encoding/json reads ids and status %q %q %q, Decode %q %q %q",
			m.OrderID, m.CustomerID, m.Status, o.OrderID, o.CustomerID, o.Status)
	}
	if total, err := ParseMoney(m.TotalAmount.String()); err != nil || total != o.TotalAmount {
		t.Fatalf("total %s read as %s", m.TotalAmount, o.TotalAmount)
	}
	created, err := time.Parse(time.RFC3339Nano, m.CreatedAt)
	if err != nil || !created.Truncate(time.Microsecond).Equal(o.CreatedAt) {
		t.Fatalf("created_at %s read as %v; time.Parse gives %v, %v", m.CreatedAt, o.CreatedAt, created, err)
	}
	if len(m.Items) != len(o.Items) {
		t.Fatalf("encoding/json reads %d items, Decode %d", len(m.Items), len(o.Items))
	}
	for i, it := range m.Items {
		q, qerr := strconv.ParseFloat(it.Quantity.String(), 64)
		p, perr := ParseMoney(it.Price.String())
		if it.Name != o.Items[i].Name || qerr != nil || q != float64(o.Items[i].Quantity) || perr != nil || p != o.Items[i].Price {
			t.Fatalf("item %d: encoding/json reads %+v, Decode %+v", i, it, o.Items[i])
		}
	}
}

func isObject(data []byte) bool {
	s := bytes.TrimLeft(data, " \t\r\n")
	return len(s) > 0 && s[0] == '{'
}

// jsonDepth is the deepest nesting of arrays and objects in data, which
// must be valid JSON.
func jsonDepth(data []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}
