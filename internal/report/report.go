// Package report is how foodpipe's reports read on a terminal: each a
// function from the data a package returns (a bench's figures, a topic's
// keys, the partitions of a group) to text on an io.Writer. The command line
// chooses what to show and whether as JSON or as this text; the figures and
// the verdicts are made elsewhere (measure, demo, inspect, store, kafka, dlq).
// It is apart from the command line as Prometheus keeps web/ui apart from
// web/api/v1: the text can change without touching how a command is wired.
//
// Every value that came from the network or the broker is written through
// safe, never as it came.
package report

import "fmt"

// count is n with its noun, singular for one: "1 member", "3 members".
func count[N ~int | ~int32 | ~int64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// isAre is n with its noun and verb: "1 key is", "2 keys are".
func isAre(n int, noun string) string {
	if n == 1 {
		return count(n, noun) + " is"
	}
	return count(n, noun) + " are"
}

// orDash is n, or "-" for the -1 that stands for none or unknown.
func orDash(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}
