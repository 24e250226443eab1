package report

import (
	"bytes"
	"strings"
	"testing"

	"foodpipe/internal/demo"
	"foodpipe/internal/semantics"
)

func TestPrintSemanticsGivesEachGroupsLostOnceAndTwice(t *testing.T) {
	var b bytes.Buffer
	PrintSemantics(&b, demo.SemanticsSummary{Produced: 300, SpreadMS: 0.042,
		Kills: []demo.Kill{{Semantics: semantics.AtMostOnce, Member: "at-most-once-1", CrashPoint: "semantics.at-most-once.after-commit\x1b[2J"}},
		Groups: []semantics.Counts{
			{Semantics: semantics.AtMostOnce, Group: "teach-at-most-once", Table: "teach_at_most_once", Produced: 300, Lost: 7, Once: 293, Rows: 293},
			{Semantics: semantics.ExactlyOnce, Group: "order-processors", Table: "orders", Produced: 300, Once: 300, Rows: 300},
		}})
	out := b.String()
	for _, want := range []string{"300 orders produced", "within 0.042 ms", "at-most-once-1", "lost", "twice+",
		"teach-at-most-once", "7", "293", "never twice, may lose", "order-processors"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("a control character from the summary reached the terminal:\n%q", out)
	}
}
