package report

import (
	"strings"
	"testing"
	"time"

	"foodpipe/internal/demo"
	"foodpipe/internal/mail"
	"foodpipe/internal/store"
)

func TestAnInboxTellsItsRepeatsAndWhatTheGroupRecorded(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := mail.Tally([]mail.Received{
		{MessageID: "A@x", To: []string{"cust-10001@example.com"}, Subject: "Order A received", At: at},
		{MessageID: "B@x", To: []string{"cust-10002@example.com"}, Subject: "Order B\x1b[2J received", At: at},
		{MessageID: "A@x", To: []string{"cust-10001@example.com"}, Subject: "Order A received", At: at},
	})
	var b strings.Builder
	PrintInbox(&b, Inbox{Inbox: in, Group: "order-notifications", Recorded: &store.NoticeCount{Sent: 2, InDoubt: 1}}, 2)
	out := b.String()
	for _, want := range []string{"3 emails received, 2 orders distinct by Message-ID, 1 duplicate",
		"repeated 2 times: A@x", "group order-notifications recorded 2 sent, 0 refused (dead letters), 0 claimed and not settled; 1 sent again in doubt",
		"newest 2:", "03:04:05  cust-10002@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("inbox lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("a subject from the network reached the terminal as it came:\n%q", out)
	}
}

func TestTheDemoSummaryTellsTheNotifier(t *testing.T) {
	var b strings.Builder
	PrintSummary(&b, demo.Summary{Produced: 3, Stored: 3, Notify: &demo.NotifySummary{Group: "order-notifications", Sent: 2, Refused: 1,
		Received: 2, Distinct: 2, Server: "smtp://127.0.0.1:1025"}})
	if want := "notify      2 orders emailed, 1 refused (dead letters) by group order-notifications, 0 sent again in doubt; 2 emails received, 2 distinct, 0 duplicates at smtp://127.0.0.1:1025"; !strings.Contains(b.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, b.String())
	}
}
