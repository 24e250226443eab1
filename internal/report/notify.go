package report

import (
	"fmt"
	"io"
	"slices"

	"foodpipe/internal/mail"
	"foodpipe/internal/store"
)

// Inbox is what a mail server received, and what the notifier group
// recorded of its emails (nil, with DBErr, when the database did not answer).
type Inbox struct {
	mail.Inbox
	Group    string             `json:"group"`
	Recorded *store.NoticeCount `json:"recorded,omitempty"`
	DBErr    string             `json:"db_error,omitempty"`
}

// PrintInbox tells what a mail server received: how many emails, how many
// different Message-IDs, and the repeats, each with its count; then what the
// group recorded, its sends in doubt the most duplicates there can be. last
// is how many of the newest emails to list.
func PrintInbox(w io.Writer, v Inbox, last int) {
	in := v.Inbox
	fmt.Fprintf(w, "%s received, %s distinct by Message-ID, %s\n",
		count(int64(len(in.Messages)), "email"), count(int64(in.Distinct), "order"), count(int64(in.Duplicates), "duplicate"))
	ids := make([]string, 0, len(in.Repeated))
	for id := range in.Repeated {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Fprintf(w, "  repeated %d times: %s\n", in.Repeated[id], safe(id))
	}
	switch {
	case v.Recorded != nil:
		r := v.Recorded
		fmt.Fprintf(w, "group %s recorded %d sent, %d refused (dead letters), %d claimed and not settled; %d sent again in doubt (the most duplicates the receiver can hold)\n",
			safe(v.Group), r.Sent, r.Refused, r.Sending, r.InDoubt)
	case v.DBErr != "":
		fmt.Fprintf(w, "group %s: the database did not answer: %s\n", safe(v.Group), safe(v.DBErr))
	}
	from := max(0, len(in.Messages)-last)
	if from < len(in.Messages) {
		fmt.Fprintf(w, "newest %d:\n", len(in.Messages)-from)
	}
	for _, m := range in.Messages[from:] {
		to := ""
		if len(m.To) > 0 {
			to = m.To[0]
		}
		fmt.Fprintf(w, "  %s  %-28s %s\n", m.At.UTC().Format("15:04:05"), safe(to), safe(m.Subject))
	}
}
