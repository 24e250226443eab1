package report

import (
	"fmt"
	"io"
	"text/tabwriter"

	"foodpipe/internal/demo"
	"foodpipe/internal/semantics"
)

// promise is what each semantics guarantees, in one line.
var promise = map[semantics.Semantics]string{
	semantics.AtMostOnce:  "commit, then write: never twice, may lose",
	semantics.AtLeastOnce: "write, then commit: never lost, may double",
	semantics.ExactlyOnce: "rows and offsets in one transaction, then commit: once",
}

// PrintSemantics writes what `demo --semantics` found: where each member
// was killed, then, per group, the orders produced that its table holds
// not at all, once, and twice or more.
func PrintSemantics(w io.Writer, s demo.SemanticsSummary) {
	fmt.Fprintf(w, "\nthree groups on one topic, %s produced, one member each held at its crash point, the three killed (SIGKILL) within %.3g ms, then restarted:\n",
		count(s.Produced, "order"), s.SpreadMS)
	for _, k := range s.Kills {
		fmt.Fprintf(w, "  %-16s killed at %s\n", safe(k.Member), safe(k.CrashPoint))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  semantics\tgroup\ttable\tlost\tonce\ttwice+\trows\tpromise")
	for _, c := range s.Groups {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", safe(string(c.Semantics)), safe(c.Group), safe(c.Table), c.Lost, c.Once, c.Twice, c.Rows, promise[c.Semantics])
	}
	_ = tw.Flush() // w is the command line's stream: nothing to do if it fails
	fmt.Fprintf(w, "  (counted from PostgreSQL after every group reached the end of the topic; %.1fs)\n", s.Seconds)
}
