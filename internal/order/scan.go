package order

// The scanner reads JSON (RFC 8259) in one pass over a message already
// known to be valid UTF-8. It knows nothing of orders: object and array
// hand each key or element to a function of the caller (decode.go), which
// reads the value with value, or with object or array again. It refuses
// nesting deeper than MaxDepth while it reads, and notes the first key seen
// twice in one object without stopping, so that a syntax error later in
// the message still wins. Every method leaves s.pos after what it consumed.
// Why it is hand-written rather than built on jsontext.Decoder is measured
// in decode.go's header.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// kind is the JSON type of a value.
type kind uint8

const (
	kindAbsent kind = iota
	kindNull
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindArray:
		return "an array"
	case kindObject:
		return "an object"
	}
	return "absent"
}

// value is a value as found in the message, not yet converted: for
// a string the bytes between the quotes, still escaped; for a number its
// literal. Converting only after the whole message has parsed lets a syntax
// error anywhere win over a field problem, and costs nothing for the
// unknown fields that are skipped.
type value struct {
	kind    kind
	escaped bool
	raw     []byte
}

// scanner is the state of one pass over a message.
type scanner struct {
	data  []byte
	pos   int
	depth int

	// dupErr is the first key seen twice in one object. It is reported
	// only once the whole message has parsed, so that a syntax error
	// anywhere still makes the message not_json.
	dupErr *InvalidError
}

func (s *scanner) syntax(what string) *InvalidError {
	if s.pos >= len(s.data) {
		return invalid(ReasonNotJSON, "", what+" at the end of the message")
	}
	return invalid(ReasonNotJSON, "", fmt.Sprintf("%s at byte %d, found %s", what, s.pos, quoteRune(s.data[s.pos:])))
}

func quoteRune(b []byte) string {
	r, _ := utf8.DecodeRune(b)
	return fmt.Sprintf("%q", r)
}

func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next byte, or 0 at the end; 0 is never valid JSON
// outside a string, so it needs no separate case.
func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) next() byte {
	c := s.peek()
	s.pos++
	return c
}

func (s *scanner) enter() *InvalidError {
	s.pos++
	s.depth++
	if s.depth > MaxDepth {
		s.pos--
		// Parsing stops here, so whether the message is JSON at all is
		// asked of a parser that does not recurse (this rare path only):
		// valid JSON that is merely too deep is too_deep, not not_json.
		if !json.Valid(s.data) {
			return s.syntax(fmt.Sprintf("nesting deeper than %d", MaxDepth))
		}
		return invalid(ReasonTooDeep, "", fmt.Sprintf("JSON nested deeper than %d, at byte %d", MaxDepth, s.pos))
	}
	return nil
}

// object parses an object at s.pos, handing each key, unescaped, to field,
// which must consume the value.
func (s *scanner) object(field func(key []byte) *InvalidError) *InvalidError {
	if err := s.enter(); err != nil {
		return err
	}
	s.space()
	if s.peek() == '}' {
		s.pos++
		s.depth--
		return nil
	}
	// The keys seen so far, to refuse one seen twice: RFC 8259 leaves it
	// to each reader which value wins, so two readers of the same message
	// could store different orders. Objects are small; a big one is
	// looked up through a map.
	var small [8][]byte
	keys := small[:0]
	var many map[string]struct{}
	for {
		s.space()
		if s.peek() != '"' {
			return s.syntax("want a string key")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		name := key.raw
		if key.escaped {
			// Rare enough to allocate. An unpaired surrogate cannot spell
			// a known key, so the key is then simply unknown.
			name, _ = unescape(nil, key)
		}
		if s.dupErr == nil {
			seen := false
			if many != nil {
				_, seen = many[string(name)]
				many[string(name)] = struct{}{}
			} else {
				for _, k := range keys {
					if bytes.Equal(k, name) {
						seen = true
						break
					}
				}
				if keys = append(keys, name); len(keys) > 32 {
					many = make(map[string]struct{}, 2*len(keys))
					for _, k := range keys {
						many[string(k)] = struct{}{}
					}
				}
			}
			if seen {
				s.dupErr = invalid(ReasonDuplicateKey, string(name), fmt.Sprintf("the key %q appears twice in one object", name))
			}
		}
		s.space()
		if s.next() != ':' {
			s.pos--
			return s.syntax("want ':' after a key")
		}
		s.space()
		if err := field(name); err != nil {
			return err
		}
		s.space()
		switch s.next() {
		case ',':
		case '}':
			s.depth--
			return nil
		default:
			s.pos--
			return s.syntax("want ',' or '}' in object")
		}
	}
}

// value parses any value. Strings, numbers and literals are returned
// unconverted; arrays and objects are checked and skipped.
func (s *scanner) value() (value, *InvalidError) {
	switch c := s.peek(); {
	case c == '"':
		return s.str()
	case c == '-' || isDigit(c):
		return s.number()
	case c == '{':
		return value{kind: kindObject}, s.object(func([]byte) *InvalidError {
			_, err := s.value()
			return err
		})
	case c == '[':
		return value{kind: kindArray}, s.array(s.skip)
	case c == 't':
		return value{kind: kindBool}, s.literal("true")
	case c == 'f':
		return value{kind: kindBool}, s.literal("false")
	case c == 'n':
		return value{kind: kindNull}, s.literal("null")
	}
	return value{}, s.syntax("want a JSON value")
}

// array parses a JSON array, calling elem for element i with the scanner
// at its first byte; elem must consume the element.
func (s *scanner) array(elem func(i int) *InvalidError) *InvalidError {
	if err := s.enter(); err != nil {
		return err
	}
	s.space()
	if s.peek() == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for i := 0; ; i++ {
		s.space()
		if err := elem(i); err != nil {
			return err
		}
		s.space()
		switch s.next() {
		case ',':
		case ']':
			s.depth--
			return nil
		default:
			s.pos--
			return s.syntax("want ',' or ']' in array")
		}
	}
}

// skip consumes any JSON value.
func (s *scanner) skip(int) *InvalidError {
	_, err := s.value()
	return err
}

// literal consumes true, false or null. A word that only starts like one
// (the n of "not json") is reported as the word it is, which a person reads
// more easily than the literal the parser hoped for.
func (s *scanner) literal(word string) *InvalidError {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		end := s.pos
		for end < len(s.data) && end-s.pos < 20 && !strings.ContainsRune(" \t\r\n,:[]{}\"", rune(s.data[end])) {
			end++
		}
		return invalid(ReasonNotJSON, "", fmt.Sprintf("%s at byte %d is not a JSON value", quote(string(s.data[s.pos:end])), s.pos))
	}
	s.pos += len(word)
	return nil
}

// str scans a string at s.pos. The input is known to be valid UTF-8, so
// only the escapes and raw control characters need checking.
func (s *scanner) str() (value, *InvalidError) {
	s.pos++
	start := s.pos
	escaped := false
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			v := value{kind: kindString, escaped: escaped, raw: s.data[start:s.pos]}
			s.pos++
			return v, nil
		case c == '\\':
			escaped = true
			s.pos++
			switch s.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				s.pos++
				for range 4 {
					if !isHex(s.peek()) {
						return value{}, s.syntax("want four hex digits after \\u")
					}
					s.pos++
				}
			default:
				return value{}, s.syntax("invalid escape")
			}
		case c < 0x20:
			return value{}, s.syntax("control character in string")
		default:
			s.pos++
		}
	}
	return value{}, s.syntax("unterminated string")
}

// number scans a number per RFC 8259:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func (s *scanner) number() (value, *InvalidError) {
	start := s.pos
	if s.peek() == '-' {
		s.pos++
	}
	switch c := s.peek(); {
	case c == '0':
		s.pos++
	case isDigit(c):
		s.digits()
	default:
		return value{}, s.syntax("want a digit")
	}
	if s.peek() == '.' {
		s.pos++
		if !isDigit(s.peek()) {
			return value{}, s.syntax("want a digit after '.'")
		}
		s.digits()
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.pos++
		if c := s.peek(); c == '+' || c == '-' {
			s.pos++
		}
		if !isDigit(s.peek()) {
			return value{}, s.syntax("want a digit in the exponent")
		}
		s.digits()
	}
	return value{kind: kindNumber, raw: s.data[start:s.pos]}, nil
}

func (s *scanner) digits() {
	for s.pos < len(s.data) && isDigit(s.data[s.pos]) {
		s.pos++
	}
}

func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// unescape appends the text of a scanned string to dst. It reports false
// for an unpaired UTF-16 surrogate escape, which has no UTF-8 form;
// encoding/json would quietly turn it into U+FFFD, changing the data.
func unescape(dst []byte, v value) ([]byte, bool) {
	if !v.escaped {
		return append(dst, v.raw...), true
	}
	s := v.raw
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		c = s[i+1]
		i += 2
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i:])
			i += 4
			if 0xD800 <= r && r < 0xDC00 {
				if i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
					return dst, false
				}
				lo := hex4(s[i+2:])
				if lo < 0xDC00 || lo > 0xDFFF {
					return dst, false
				}
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			} else if 0xDC00 <= r && r <= 0xDFFF {
				return dst, false
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
	return dst, true
}

// hex4 reads four hex digits the scanner has already checked.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			r = r<<4 | rune(c-'0')
		case c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			r = r<<4 | rune(c-'a'+10)
		}
	}
	return r
}
