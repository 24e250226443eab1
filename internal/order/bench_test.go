package order

import (
	"encoding/json"
	"testing"
)

// benchOrder is a typical generated order: three items, about 280 bytes.
func benchOrder(b *testing.B) Order {
	b.Helper()
	g := NewGenerator(3, steppingClock())
	for {
		if o := g.Next(); len(o.Items) == 3 {
			return o
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data := benchOrder(b).AppendJSON(nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeWithEncodingJSON is the baseline Decode's hand-written
// parser is measured against: encoding/json into an Order, then Validate.
// It is less strict (case-insensitive keys, no depth limit of its own, no
// missing-field detection), and still slower.
func BenchmarkDecodeWithEncodingJSON(b *testing.B) {
	data := benchOrder(b).AppendJSON(nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var o Order
		if err := json.Unmarshal(data, &o); err != nil {
			b.Fatal(err)
		}
		if err := o.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRefusal(b *testing.B) {
	data := []byte(with(`21.47`, `21.46`))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	o := benchOrder(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := o.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	o := benchOrder(b)
	buf := o.AppendJSON(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = o.AppendJSON(buf[:0])
	}
}

func BenchmarkGeneratorNext(b *testing.B) {
	g := NewGenerator(3, steppingClock())
	b.ReportAllocs()
	for b.Loop() {
		g.Next()
	}
}

func BenchmarkGeneratorNextInto(b *testing.B) {
	g := NewGenerator(3, steppingClock())
	var o Order
	b.ReportAllocs()
	for b.Loop() {
		g.NextInto(&o)
	}
}

func BenchmarkGeneratorAppendNext(b *testing.B) {
	g := NewGenerator(3, steppingClock())
	var o Order
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = g.AppendNext(buf[:0], &o)
	}
}
