package report

import "testing"

func TestSafeEscapesWhatATerminalWouldObey(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain text is kept", "foodpipe-alice", "foodpipe-alice"},
		{"text in other scripts is kept", "café 注文 🍔", "café 注文 🍔"},
		{"an OSC window title with BEL", "\x1b]0;pwned\a", `\x1b]0;pwned\x07`},
		{"a clear-screen CSI", "\x1b[2J", `\x1b[2J`},
		{"a C1 CSI", "\u009b2J", `\x9b2J`},
		{"a right-to-left override", "abc\u202edef", `abc\u202edef`},
		{"an isolate", "\u2066x\u2069", `\u2066x\u2069`},
		{"a newline and a tab", "a\nb\tc", `a\x0ab\x09c`},
		{"DEL", "a\x7f", `a\x7f`},
		{"bytes that are not UTF-8", "a\xffb", `a\xffb`},
		{"a backslash, so that escapes stay unambiguous", `a\x1b`, `a\\x1b`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := safe(tt.in); got != tt.want {
				t.Errorf("safe(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
