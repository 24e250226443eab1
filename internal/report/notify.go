package report

import (
	"fmt"
	"io"
	"slices"

	"foodpipe/internal/mail"
)

// PrintInbox tells what a mail server received: how many emails, how many
// different Message-IDs, and the repeats, each with its count. last is how
// many of the newest emails to list.
func PrintInbox(w io.Writer, in mail.Inbox, last int) {
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
