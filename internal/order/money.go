package order

import (
	"math"
	"strconv"
)

// Money is an exact amount in cents.
//
// Prices travel as JSON numbers such as 8.99, and 0.1+0.2 is not 0.3 in
// binary floating point, so every amount is held and summed as whole cents
// and only ever converted to and from its decimal text.
type Money int64

// MaxMoney is the largest amount the orders table can hold: the
// total_amount column is NUMERIC(10,2), so |amount| ≤ 99,999,999.99.
const MaxMoney Money = 99_999_999_99

// ParseMoney parses a decimal amount such as "8.99", "8.9", "8" or "-0.50".
//
// The accepted text is exactly a JSON number without an exponent and with at
// most two decimals: an optional leading '-', then "0" or digits without a
// leading zero, then optionally '.' and one or two digits. One grammar for
// both the wire and for people keeps the two from drifting apart. Errors are
// *strconv.NumError wrapping strconv.ErrSyntax or strconv.ErrRange.
func ParseMoney(s string) (Money, error) {
	m, st := parseMoney(s)
	switch st {
	case moneyOK:
		return m, nil
	case moneyRange:
		return 0, &strconv.NumError{Func: "ParseMoney", Num: s, Err: strconv.ErrRange}
	default:
		return 0, &strconv.NumError{Func: "ParseMoney", Num: s, Err: strconv.ErrSyntax}
	}
}

// String formats m with exactly two decimals: "8.99", "9.00", "-0.50".
func (m Money) String() string {
	var b [24]byte
	return string(appendMoney(b[:0], m))
}

// MarshalJSON writes m as a JSON number with two decimals, e.g. 8.99.
func (m Money) MarshalJSON() ([]byte, error) {
	return appendMoney(make([]byte, 0, 16), m), nil
}

// UnmarshalJSON parses one JSON number literal exactly, digit by digit.
//
// It never goes through float64, which cannot hold most cent amounts. Unlike
// the encoding/json convention it refuses null: a price that is null is
// missing, and keeping the zero value would hide that. Strings, exponents
// and more than two decimals are refused as well.
func (m *Money) UnmarshalJSON(b []byte) error {
	v, st := parseMoney(b)
	switch st {
	case moneyOK:
		*m = v
		return nil
	case moneyRange:
		return &strconv.NumError{Func: "Money.UnmarshalJSON", Num: string(b), Err: strconv.ErrRange}
	default:
		return &strconv.NumError{Func: "Money.UnmarshalJSON", Num: string(b), Err: strconv.ErrSyntax}
	}
}

// moneyStatus says why a money text was refused, so that Decode can give a
// precise detail while ParseMoney keeps to the strconv error kinds.
type moneyStatus uint8

const (
	moneyOK moneyStatus = iota
	moneySyntax
	moneyDecimals // more than two decimals
	moneyExponent
	moneyRange
)

// why says what is wrong, after the amount: "8.999 has more than two
// decimals".
func (st moneyStatus) why() string {
	switch st {
	case moneyDecimals:
		return "has more than two decimals"
	case moneyExponent:
		return "has an exponent"
	case moneyRange:
		return "is out of range"
	}
	return "is not a decimal amount"
}

// parseMoney is generic over string and []byte so that the hot decode path
// parses the message bytes in place without converting them to a string.
func parseMoney[T string | []byte](s T) (Money, moneyStatus) {
	i, n := 0, len(s)
	neg := false
	if i < n && s[i] == '-' {
		neg = true
		i++
	}
	start := i
	var units uint64
	for ; i < n && isDigit(s[i]); i++ {
		d := uint64(s[i] - '0')
		if units > (math.MaxUint64-d)/10 {
			return 0, moneyRange
		}
		units = units*10 + d
	}
	if i == start || (s[start] == '0' && i-start > 1) {
		return 0, moneySyntax
	}
	var cents uint64
	if i < n && s[i] == '.' {
		i++
		fs := i
		for ; i < n && isDigit(s[i]); i++ {
		}
		switch i - fs {
		case 0:
			return 0, moneySyntax
		case 1:
			cents = uint64(s[fs]-'0') * 10
		case 2:
			cents = uint64(s[fs]-'0')*10 + uint64(s[fs+1]-'0')
		default:
			if i == n || isExponent(s[i:]) {
				return 0, moneyDecimals
			}
			return 0, moneySyntax
		}
	}
	if i < n {
		if isExponent(s[i:]) {
			return 0, moneyExponent
		}
		return 0, moneySyntax
	}
	// The magnitude may reach 2^63 only when negative (math.MinInt64).
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	if units > (limit-cents)/100 {
		return 0, moneyRange
	}
	v := units*100 + cents
	if neg {
		return Money(-v), moneyOK // two's complement: -2^63 wraps to itself, as wanted
	}
	return Money(v), moneyOK
}

// isExponent reports whether s is a well-formed JSON exponent, so that 1e3
// can be named as such instead of as a syntax error.
func isExponent[T string | []byte](s T) bool {
	if len(s) < 2 || (s[0] != 'e' && s[0] != 'E') {
		return false
	}
	i := 1
	if s[i] == '+' || s[i] == '-' {
		i++
	}
	if i == len(s) {
		return false
	}
	for ; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func appendMoney(dst []byte, m Money) []byte {
	u := uint64(m)
	if m < 0 {
		dst = append(dst, '-')
		u = -u // correct for math.MinInt64 too, read as unsigned
	}
	dst = strconv.AppendUint(dst, u/100, 10)
	c := u % 100
	return append(dst, '.', byte('0'+c/10), byte('0'+c%10))
}
