package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	"foodpipe/internal/dlq"
)

// PrintDeadLetters writes `foodpipe dlq list`: a line for each dead letter
// (where it came from, why, and the start of the message as it was), then
// how many there are of each reason. Everything in a dead letter's headers
// came from whoever wrote the message.
func PrintDeadLetters(w io.Writer, dead []dlq.Letter) {
	counts := map[string]int{}
	if len(dead) > 0 {
		// The error column is the reason in words (what the decoder or
		// validator said); the value is the start of the message as it was.
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DLQ OFFSET\tREASON\tFROM (topic/partition@offset)\tFAILED AT\tVALUE\tERROR")
		for _, d := range dead {
			counts[d.Reason]++
			fmt.Fprintf(tw, "%d\t%s\t%s/%s@%s\t%s\t%s\t%s%s\n", d.Offset, safe(d.Reason),
				safe(d.SourceTopic), safe(d.SourcePartition), safe(d.SourceOffset), safe(d.FailedAt), dlq.Preview(d.Record.Value, 40),
				safe(d.InWords()), safe(d.Chain()))
		}
		tw.Flush()
	}
	fmt.Fprint(w, count(len(dead), "dead letter"))
	for _, r := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(w, "  %s=%d", safe(r), counts[r])
	}
	fmt.Fprintln(w)
}

// PrintReplay writes what `foodpipe dlq replay` did with each dead letter of
// plan (dry: what it would do), and how many it replayed and skipped.
func PrintReplay(w io.Writer, plan []dlq.Decision, dry bool) {
	replayed, skipped := 0, 0
	for _, d := range plan {
		pos := d.Letter.Position()
		switch {
		case !d.Replay:
			skipped++
			fmt.Fprintf(w, "skip    %s (%s): %s\n", pos, safe(d.Letter.Reason), safe(d.Why))
		case dry:
			fmt.Fprintf(w, "would replay %s (%s): %s\n", pos, safe(d.Letter.Reason), dlq.Preview(d.Letter.Record.Value, 60))
		default:
			replayed++
			fmt.Fprintf(w, "replay %s (%s): %s\n", pos, safe(d.Letter.Reason), dlq.Preview(d.Letter.Record.Value, 60))
		}
	}
	fmt.Fprintf(w, "replayed %d, skipped %d\n", replayed, skipped)
}
