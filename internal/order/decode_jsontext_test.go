package order

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// decodeJSONText is Decode with its scanner replaced by json/v2's
// jsontext.Decoder: the tokens and values it reads, and the errors it
// returns, are mapped to the same fields and reasons, and the conversion
// (decoder.order, convertItem, unescape) is Decode's own. It exists to
// measure what the hand-written scanner saves (BenchmarkDecodeJSONText,
// BenchmarkDecodeVsJSONText; the figures are in decode.go's header) and is
// held to the same answers as Decode by FuzzDecodeJSONTextAgreesWithDecode.
func decodeJSONText(data []byte) (Order, error) {
	if err := precheck(data); err != nil {
		return Order{}, err
	}
	s := textScanners.Get().(*textScanner)
	defer s.release()
	s.buf = *bytes.NewBuffer(data)
	s.dec.Reset(&s.buf, textOptions...)
	s.d = decoder{}
	p := textParser{dec: &s.dec, data: data, d: &s.d}
	if err := p.document(p.orderObject); err != nil {
		return Order{}, err
	}
	o, err := s.d.order()
	if err != nil {
		return Order{}, err
	}
	if err := o.Validate(); err != nil {
		return Order{}, err
	}
	return o, nil
}

// textOptions: the message is known to be valid UTF-8 before it is read,
// so the only "invalid UTF-8" left is an escaped lone surrogate, which
// Decode reports as invalid_text on the field that holds it.
var textOptions = []jsontext.Options{jsontext.AllowInvalidUTF8(true)}

// A jsontext.Decoder keeps its buffers across Reset, so one is kept per
// goroutine at work rather than allocated per message; so is the decoder
// that holds the fields, which would otherwise escape to the heap.
type textScanner struct {
	dec jsontext.Decoder
	buf bytes.Buffer
	d   decoder
}

var textScanners = sync.Pool{New: func() any { return new(textScanner) }}

func (s *textScanner) release() {
	s.buf, s.d = bytes.Buffer{}, decoder{}
	textScanners.Put(s)
}

type textParser struct {
	dec  *jsontext.Decoder
	data []byte
	d    *decoder
}

// document reads the whole message: one value, handed to top when it is an
// object, and nothing after it.
func (p *textParser) document(top func() *InvalidError) *InvalidError {
	switch p.dec.PeekKind() {
	case '{':
		if err := top(); err != nil {
			return err
		}
	case jsontext.KindInvalid:
		_, err := p.dec.ReadToken()
		return p.fail(err)
	default:
		if err := p.skip(); err != nil {
			return err
		}
		return invalid(ReasonNotJSON, "", "the message is not a JSON object")
	}
	switch _, err := p.dec.ReadToken(); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return p.fail(err)
	}
	return invalid(ReasonNotJSON, "", fmt.Sprintf("data after the object at byte %d", p.valueStart()))
}

func (p *textParser) orderObject() *InvalidError { return p.object(p.orderField) }

// orderField reads the value of one top-level key.
func (p *textParser) orderField(key []byte) *InvalidError {
	d := p.d
	var err *InvalidError
	switch string(key) {
	case "order_id":
		d.orderID, err = p.value()
	case "customer_id":
		d.customerID, err = p.value()
	case "items":
		d.nItems, d.moreItems, d.itemErr = 0, d.moreItems[:0], nil
		if p.dec.PeekKind() == '[' {
			d.itemsKind = kindArray
			return p.array(p.item)
		}
		var v value
		v, err = p.value()
		d.itemsKind = v.kind
	case "total_amount":
		d.totalAmount, err = p.value()
	case "status":
		d.status, err = p.value()
	case "created_at":
		d.createdAt, err = p.value()
	default:
		err = p.skip()
	}
	return err
}

// item reads element i of the items array and, while no element before it
// has failed, converts it.
func (p *textParser) item(i int) *InvalidError {
	d := p.d
	if p.dec.PeekKind() != '{' {
		v, err := p.value()
		if err == nil && d.itemErr == nil {
			f := fmt.Sprintf("items[%d]", i)
			d.itemErr = invalid(ReasonWrongType, f, fmt.Sprintf("%s is %s, want an object", f, v.kind))
		}
		return err
	}
	var name, quantity, price value
	err := p.object(func(key []byte) *InvalidError {
		var err *InvalidError
		switch string(key) {
		case "name":
			name, err = p.value()
		case "quantity":
			quantity, err = p.value()
		case "price":
			price, err = p.value()
		default:
			err = p.skip()
		}
		return err
	})
	if err != nil || d.itemErr != nil {
		return err
	}
	it, bad := convertItem(i, name, quantity, price)
	if bad != nil {
		d.itemErr = bad
		return nil //nolint:nilerr // reported once the whole message has parsed
	}
	d.addItem(it)
	return nil
}

// object reads the object that is next, handing each key, unescaped, to
// field, which must consume the value. jsontext refuses a key seen twice.
func (p *textParser) object(field func(key []byte) *InvalidError) *InvalidError {
	if err := p.begin(); err != nil {
		return err
	}
	for {
		if p.dec.PeekKind() == '}' {
			_, err := p.dec.ReadToken()
			return p.fail(err)
		}
		name, err := p.dec.ReadValue()
		if err != nil {
			return p.fail(err)
		}
		key := name[1 : len(name)-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			key, _ = unescape(nil, value{kind: kindString, escaped: true, raw: key})
		}
		if err := field(key); err != nil {
			return err
		}
	}
}

// array reads the array that is next, calling elem for element i, which
// must consume it.
func (p *textParser) array(elem func(i int) *InvalidError) *InvalidError {
	if err := p.begin(); err != nil {
		return err
	}
	for i := 0; ; i++ {
		if p.dec.PeekKind() == ']' {
			_, err := p.dec.ReadToken()
			return p.fail(err)
		}
		if err := elem(i); err != nil {
			return err
		}
	}
}

// begin reads a '{' or '[' and enforces MaxDepth.
func (p *textParser) begin() *InvalidError {
	if _, err := p.dec.ReadToken(); err != nil {
		return p.fail(err)
	}
	if p.dec.StackDepth() > MaxDepth {
		return p.tooDeep()
	}
	return nil
}

// value reads any value. Strings, numbers and literals are returned
// unconverted, as slices of the message; arrays and objects are skipped.
func (p *textParser) value() (value, *InvalidError) {
	var v value
	switch p.dec.PeekKind() {
	case '{':
		return value{kind: kindObject}, p.skip()
	case '[':
		return value{kind: kindArray}, p.skip()
	case '"':
		v.kind = kindString
	case '0':
		v.kind = kindNumber
	case 't', 'f':
		v.kind = kindBool
	case 'n':
		v.kind = kindNull
	}
	raw, err := p.dec.ReadValue()
	if err != nil {
		return value{}, p.fail(err)
	}
	end := int(p.dec.InputOffset())
	v.raw = p.data[end-len(raw) : end]
	if v.kind == kindString {
		v.raw = v.raw[1 : len(v.raw)-1]
		v.escaped = bytes.IndexByte(v.raw, '\\') >= 0
	}
	return v, nil
}

// skip consumes the next value, token by token, so that MaxDepth holds
// inside it.
func (p *textParser) skip() *InvalidError {
	depth := p.dec.StackDepth()
	for {
		tok, err := p.dec.ReadToken()
		if err != nil {
			return p.fail(err)
		}
		if k := tok.Kind(); (k == '{' || k == '[') && p.dec.StackDepth() > MaxDepth {
			return p.tooDeep()
		}
		if p.dec.StackDepth() == depth {
			return nil
		}
	}
}

// tooDeep is reached at the first nesting past MaxDepth, where reading
// stops: valid JSON that is merely deep is too_deep, anything else not_json.
func (p *textParser) tooDeep() *InvalidError {
	at := p.dec.InputOffset() - 1
	if !jsontext.Value(p.data).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) {
		return invalid(ReasonNotJSON, "", fmt.Sprintf("nesting deeper than %d at byte %d", MaxDepth, at))
	}
	return invalid(ReasonTooDeep, "", fmt.Sprintf("JSON nested deeper than %d, at byte %d", MaxDepth, at))
}

// fail maps an error of the jsontext.Decoder to a reason; nil stays nil.
func (p *textParser) fail(err error) *InvalidError {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return invalid(ReasonNotJSON, "", "no JSON value in the message")
	}
	var serr *jsontext.SyntacticError
	if !errors.As(err, &serr) {
		return invalid(ReasonNotJSON, "", err.Error())
	}
	if errors.Is(serr.Err, jsontext.ErrDuplicateName) {
		return p.duplicate(p.keyAt(int(serr.ByteOffset)))
	}
	// A word that only starts like a literal (the n of "not json") is
	// named as the word it is.
	start := p.valueStart()
	if int64(start) < serr.ByteOffset && start < len(p.data) && strings.IndexByte("tfn", p.data[start]) >= 0 {
		end := start
		for end < len(p.data) && end-start < 20 && !strings.ContainsRune(" \t\r\n,:[]{}\"", rune(p.data[end])) {
			end++
		}
		return invalid(ReasonNotJSON, "", fmt.Sprintf("%s at byte %d is not a JSON value", quote(string(p.data[start:end])), start))
	}
	if errors.Is(serr.Err, io.ErrUnexpectedEOF) {
		return invalid(ReasonNotJSON, "", "the message ends inside a JSON value")
	}
	return invalid(ReasonNotJSON, "", fmt.Sprintf("%v at byte %d", serr.Err, serr.ByteOffset))
}

// valueStart is where the next value starts, after the last token read.
func (p *textParser) valueStart() int {
	i := int(p.dec.InputOffset())
	for i < len(p.data) && strings.IndexByte(" \t\r\n,:", p.data[i]) >= 0 {
		i++
	}
	return i
}

// keyAt is the key whose opening quote is at data[i], unescaped as Decode
// unescapes it: up to an unpaired surrogate, where jsontext (and its
// SyntacticError.JSONPointer) would put U+FFFD.
func (p *textParser) keyAt(i int) string {
	end := i + 1
	for p.data[end] != '"' {
		if p.data[end] == '\\' {
			end++
		}
		end++
	}
	raw := p.data[i+1 : end]
	key, _ := unescape(nil, value{kind: kindString, escaped: bytes.IndexByte(raw, '\\') >= 0, raw: raw})
	return string(key)
}

// duplicate is reached at the first key seen twice in one object, where
// jsontext stops. The key is reported only if the whole message is
// otherwise JSON within MaxDepth and an object, which a second pass that
// allows duplicates finds out.
func (p *textParser) duplicate(key string) *InvalidError {
	s := new(textScanner)
	s.buf = *bytes.NewBuffer(p.data)
	s.dec.Reset(&s.buf, jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	again := textParser{dec: &s.dec, data: p.data}
	if err := again.document(again.skip); err != nil {
		return err
	}
	return invalid(ReasonDuplicateKey, key, fmt.Sprintf("the key %q appears twice in one object", key))
}

// BenchmarkDecodeJSONText and BenchmarkDecodeRefusalJSONText are
// BenchmarkDecode and BenchmarkDecodeRefusal with decodeJSONText.
func BenchmarkDecodeJSONText(b *testing.B) {
	data := benchOrder(b).AppendJSON(nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeJSONText(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRefusalJSONText(b *testing.B) {
	data := []byte(with(`21.47`, `21.46`))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeJSONText(data); err == nil {
			b.Fatal("accepted")
		}
	}
}

// FuzzDecodeJSONTextAgreesWithDecode holds decodeJSONText to Decode's
// answers: the same Order, or the same reason on the same field. Its seeds
// run with every go test; with -fuzz it searches for a difference.
func FuzzDecodeJSONTextAgreesWithDecode(f *testing.F) {
	for _, s := range textSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := Decode(data)
		got, gotErr := decodeJSONText(data)
		if ReasonOf(gotErr) != ReasonOf(wantErr) || fieldOf(gotErr) != fieldOf(wantErr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("on %q\nDecode         %+v, %v\ndecodeJSONText %+v, %v", data, want, wantErr, got, gotErr)
		}
	})
}

func fieldOf(err error) string {
	if e, ok := errors.AsType[*InvalidError](err); ok {
		return e.Field
	}
	return ""
}

// textSeeds are messages that each take a different path through a
// scanner: every malformation Decode names, and generated orders.
func textSeeds() []string {
	seeds := []string{
		prdOrder, "", " ", "null", "{}", "[]", "[1,2]", `"order"`, "not json", `{"a":ture}`, `{"a":nul`,
		`{"a":true t}`, `{"a":n}`, `{"a":"tu\q"}`, `{}{}`, prdOrder + " x", prdOrder + "{}", prdOrder[:20],
		"\xff\xfe{}", nested(32), nested(33), nested(100_000), strings.Repeat(`{"a":`, 40),
		`[{"a":1,"a":2}]`, `{"a":1,"a":2} x`, `{"a":1,"a":2,"b":` + nested(40) + `}`,
		`{"\ud800":1,"\udc00":2}`, `{"a/b":1,"a/b":2}`, `{"a~b":1,"a~b":2}`,
		with(`"status"`, `"extra":`+nested(31)+`,"status"`),
		with(`"status"`, `"extra":`+nested(32)+`,"status"`),
		with(`"status"`, `"extra":{"a":1,"b":{"c":1,"c":1}},"status"`),
		with(`"status"`, `"\u0073tatus":"confirmed","status"`),
		with(`"status"`, manyKeys(70)+`,"k7":0,"status"`),
		with(`"status"`, `"coupon":{"code":"X","ids":[1,2.5e3,true,null,{}]},"status"`),
		with(`"order_id"`, `"order\u005fid"`),
		with(`"Burger"`, `"Caf\u00e9 \"Burger\" \\ \/ \ud83c\udf54"`),
		with(`"Burger"`, `"\ud83c"`),
		with(`"Burger"`, `"\u0000"`),
		with(`"Burger"`, "\"Bur\nger\""),
		with(`"Burger"`, `"Bur\u12"`),
		with(`"quantity":2`, `"quantity":2.5`),
		with(`"quantity":2`, `"quantity":"2"`),
		with(`{"name":"Fries","quantity":1,"price":3.49}`, `[]`),
		with(`{"name":"Fries","quantity":1,"price":3.49}`, `7`),
		with(`[{"name":"Burger","quantity":2,"price":8.99},{"name":"Fries","quantity":1,"price":3.49}]`, `{"a":[1]}`),
		with(`"items"`, `"items":[7],"items"`),
		with(`21.47`, `NaN`), with(`21.47`, `-`), with(`21.47`, `21.`), with(`21.47`, `021.47`),
		with(`21.47`, `21.46`), with(`21.47`, `21.470`),
		with(`,"status"`, `,,"status"`), with(`"status":`, `"status" `), with(`"status":`, `status:`),
		with(`3.49}]`, `3.49},]`), with(`"pending"`, `{"code":"pending"}`),
		with(`2025-01-10T14:30:00.123Z`, `\ud800`),
		manyItems(40),
	}
	g := NewGenerator(7, nil)
	for range 20 {
		seeds = append(seeds, string(g.Next().AppendJSON(nil)))
	}
	return seeds
}
