package order

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Money
		err  error // strconv.ErrSyntax or strconv.ErrRange
	}{
		{"two decimals are cents", "8.99", 899, nil},
		{"one decimal is tens of cents", "8.9", 890, nil},
		{"no decimals is whole units", "8", 800, nil},
		{"a leading zero before the point is fine", "0.50", 50, nil},
		{"zero is zero", "0", 0, nil},
		{"a leading minus is negative", "-0.50", -50, nil},
		{"minus zero is zero", "-0", 0, nil},
		{"the storage maximum parses", "99999999.99", MaxMoney, nil},
		{"amounts beyond storage still fit in Money", "100000000.00", MaxMoney + 1, nil},
		{"the largest Money parses", "92233720368547758.07", math.MaxInt64, nil},
		{"the smallest Money parses", "-92233720368547758.08", math.MinInt64, nil},
		{"three decimals are refused", "8.999", 0, strconv.ErrSyntax},
		{"a trailing zero third decimal is still refused", "8.990", 0, strconv.ErrSyntax},
		{"a plus sign is refused", "+8.99", 0, strconv.ErrSyntax},
		{"a double minus is refused", "--8", 0, strconv.ErrSyntax},
		{"a lone minus is refused", "-", 0, strconv.ErrSyntax},
		{"an exponent is refused", "1e3", 0, strconv.ErrSyntax},
		{"an exponent after decimals is refused", "8.99e0", 0, strconv.ErrSyntax},
		{"the empty string is refused", "", 0, strconv.ErrSyntax},
		{"a point without digits after it is refused", "8.", 0, strconv.ErrSyntax},
		{"a point without digits before it is refused", ".5", 0, strconv.ErrSyntax},
		{"leading zeros are refused as in JSON", "08.99", 0, strconv.ErrSyntax},
		{"white space is refused", " 8.99", 0, strconv.ErrSyntax},
		{"a comma is refused", "8,99", 0, strconv.ErrSyntax},
		{"letters are refused", "8.9x", 0, strconv.ErrSyntax},
		{"NaN is refused", "NaN", 0, strconv.ErrSyntax},
		{"one cent beyond the largest Money overflows", "92233720368547758.08", 0, strconv.ErrRange},
		{"one cent below the smallest Money overflows", "-92233720368547758.09", 0, strconv.ErrRange},
		{"a huge amount overflows", "123456789012345678901234567890", 0, strconv.ErrRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMoney(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseMoney(%q) error %v, want %v", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseMoney(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestMoneyString(t *testing.T) {
	tests := []struct {
		name string
		in   Money
		want string
	}{
		{"cents are written with two decimals", 899, "8.99"},
		{"whole amounts keep two zero decimals", 900, "9.00"},
		{"tens of cents keep a trailing zero", 910, "9.10"},
		{"amounts under one have a leading zero", 5, "0.05"},
		{"zero is 0.00", 0, "0.00"},
		{"negative amounts under one keep their sign", -50, "-0.50"},
		{"the storage maximum is written in full", MaxMoney, "99999999.99"},
		{"the smallest Money does not overflow", math.MinInt64, "-92233720368547758.08"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.String(); got != tt.want {
				t.Errorf("Money(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
			}
			if back, err := ParseMoney(tt.want); err != nil || back != tt.in {
				t.Errorf("ParseMoney(%q) = %d, %v; the text does not parse back", tt.want, back, err)
			}
		})
	}
}

func TestMoneySumsAreExact(t *testing.T) {
	a, _ := ParseMoney("0.1")
	b, _ := ParseMoney("0.2")
	if got := (a + b).String(); got != "0.30" {
		t.Errorf("0.1 + 0.2 = %s, want 0.30", got)
	}
	var sum Money
	cent, _ := ParseMoney("0.01")
	for range 100 {
		sum += cent
	}
	if sum.String() != "1.00" {
		t.Errorf("a hundred cents make %s, want 1.00", sum)
	}
}

func TestMoneyMarshalJSON(t *testing.T) {
	got, err := json.Marshal(struct {
		Price Money   `json:"price"`
		Many  []Money `json:"many"`
	}{899, []Money{900, -50}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"price":8.99,"many":[9.00,-0.50]}`; string(got) != want {
		t.Errorf("json.Marshal = %s, want %s", got, want)
	}
}

func TestMoneyUnmarshalJSON(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   Money
		wantOK bool
	}{
		{"a number with two decimals is exact", `8.99`, 899, true},
		{"a whole number is accepted", `9`, 900, true},
		{"one decimal is accepted", `9.0`, 900, true},
		{"a trailing zero second decimal is accepted", `9.10`, 910, true},
		{"an amount float64 cannot hold is still exact", `92233720368547758.07`, math.MaxInt64, true},
		{"three decimals are refused", `8.999`, 0, false},
		{"an exponent is refused", `1e3`, 0, false},
		{"a string is refused", `"8.99"`, 0, false},
		{"null is refused", `null`, 0, false},
		{"NaN is refused", `NaN`, 0, false},
		{"Infinity is refused", `Infinity`, 0, false},
		{"an object is refused", `{}`, 0, false},
		{"overflow is refused", `99999999999999999999`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Money(-1)
			err := m.UnmarshalJSON([]byte(tt.in))
			if (err == nil) != tt.wantOK {
				t.Fatalf("UnmarshalJSON(%s) error %v, want ok=%v", tt.in, err, tt.wantOK)
			}
			if tt.wantOK && m != tt.want {
				t.Errorf("UnmarshalJSON(%s) = %d, want %d", tt.in, m, tt.want)
			}
			if !tt.wantOK && m != -1 {
				t.Errorf("a refused value changed the Money to %d", m)
			}
		})
	}
}

func TestMoneyWorksWithEncodingJSON(t *testing.T) {
	var v struct{ Price Money }
	if err := json.Unmarshal([]byte(`{"Price": 21.47}`), &v); err != nil || v.Price != 2147 {
		t.Errorf("json.Unmarshal = %d, %v; want 2147", v.Price, err)
	}
	for _, in := range []string{`{"Price": null}`, `{"Price": "21.47"}`, `{"Price": 21.475}`} {
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("json.Unmarshal(%s) succeeded, want an error", in)
		}
	}
}
