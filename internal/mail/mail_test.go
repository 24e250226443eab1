package mail

import (
	"strings"
	"testing"
	"time"
)

func TestAMessageIDDependsOnTheOrderIDAloneAndNamesItBack(t *testing.T) {
	for _, tc := range []struct{ name, id string }{
		{"a generated order id", "ORD-20261203-0f3a9c1e2b4d5a6c-000042"},
		{"an id with a space and angle brackets", "x <y> z"},
		{"an empty id", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := MessageID(tc.id), MessageID(tc.id)
			if a != b || !strings.HasPrefix(a, "<") || !strings.HasSuffix(a, "@"+idDomain+">") {
				t.Fatalf("MessageID(%q) = %q, then %q", tc.id, a, b)
			}
			if strings.ContainsAny(a[1:len(a)-1], "<> \r\n") {
				t.Errorf("MessageID(%q) = %q carries characters a Message-ID cannot", tc.id, a)
			}
			got := OrderOf(a)
			if localPart(tc.id) == tc.id && got != tc.id {
				t.Errorf("OrderOf(%q) = %q, want %q", a, got, tc.id)
			}
			if localPart(tc.id) != tc.id && got != "" {
				t.Errorf("OrderOf(%q) = %q for a hashed id, want none", a, got)
			}
		})
	}
	if MessageID("a") == MessageID("b") {
		t.Error("two orders share a Message-ID")
	}
}

func TestTallyCountsRepeatsByMessageID(t *testing.T) {
	in := Tally([]Received{{MessageID: "a"}, {MessageID: "b"}, {MessageID: "a"}, {MessageID: "a"}})
	if in.Distinct != 2 || in.Duplicates != 2 || in.Repeated["a"] != 3 || len(in.Repeated) != 1 {
		t.Errorf("Tally = %+v, want 2 distinct, 2 duplicates, a repeated 3 times", in)
	}
}

func TestAHeaderValueStaysOnItsLine(t *testing.T) {
	m := Message{To: "a@example.com\r\nBcc: b@example.org", MessageID: MessageID("x"), Subject: "s\nX-Evil: 1", Body: "one\ntwo\n"}
	raw := string(m.bytes(fixed))
	head, body, _ := strings.Cut(raw, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(line, "Bcc:") || strings.HasPrefix(line, "X-Evil:") {
			t.Errorf("a header value started a header of its own: %q", line)
		}
	}
	if body != "one\r\ntwo\r\n" {
		t.Errorf("body %q, want CRLF line ends", body)
	}
}

func TestParseURLTakesSMTPHostPortOnly(t *testing.T) {
	for _, bad := range []string{"http://h:25", "smtp://h", "smtp://u:p@h:25", "smtp://h:25/x", "h:25"} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
	if s, err := ParseURL("smtp://127.0.0.1:1025"); err != nil || s.Addr() != "127.0.0.1:1025" {
		t.Errorf("ParseURL = %v, %v", s, err)
	}
}

var fixed = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
