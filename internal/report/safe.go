package report

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// safe makes a value that came from the network or the broker (a member's
// client id or host, a dead letter's reason, key or headers, a topic's
// config) harmless on a terminal: control characters (C0, DEL, C1), the
// bidirectional-text overrides that reorder what is shown, and bytes that
// are not UTF-8 are written as escapes, and so is the backslash, so that an
// escape in the output always means one. Anyone who can join the group or
// write to a topic could otherwise move the cursor, clear the screen, set
// the window title or make text read backwards in an operator's terminal.
func safe(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unsafeRune(r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\\' || unsafeRune(r) || r == utf8.RuneError && size == 1 {
			return true
		}
		i += size
	}
	return false
}

func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f: // C0, DEL, C1
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, // bidi marks
		r >= 0x202a && r <= 0x202e, // embeddings and overrides
		r >= 0x2066 && r <= 0x2069: // isolates
		return true
	}
	return false
}
