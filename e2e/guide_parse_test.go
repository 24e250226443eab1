package e2e

import (
	"slices"
	"testing"
)

// The guide runner must see every marked block, keep a comment after a
// command out of it, join continued lines, and take actions on their own.
func TestGuideParserReadsStepsAsMarked(t *testing.T) {
	doc := "Intro.\n\n" +
		"<!-- guide: run -->\n<!-- guide: expect /ok/ -->\n```sh\n./foodpipe status   # look at it\n./foodpipe topic \\\n  keys\n```\n\n" +
		"```sh\nnot run: no directive\n```\n\n" +
		"<!-- guide: interrupt alice -->\n\n" +
		"<!-- guide: start alice bob -->\n```sh\n./foodpipe consume --id alice\n./foodpipe consume --id bob\n```\n"
	steps := parseGuide(t, doc)
	if len(steps) != 3 {
		t.Fatalf("%d steps, want 3: %+v", len(steps), steps)
	}
	if want := []string{"./foodpipe status", "./foodpipe topic keys"}; !slices.Equal(steps[0].commands, want) ||
		!slices.Equal(steps[0].directives, []string{"run", "expect /ok/"}) {
		t.Errorf("first step %+v, want the two commands %q under run and expect", steps[0], want)
	}
	if !slices.Equal(steps[1].directives, []string{"interrupt alice"}) || steps[1].commands != nil {
		t.Errorf("second step %+v, want the action alone", steps[1])
	}
	if len(steps[2].commands) != 2 || steps[2].directives[0] != "start alice bob" {
		t.Errorf("third step %+v, want two commands to start", steps[2])
	}
}

func TestGuideRewritesOnlyTheAddressesALearnerTypes(t *testing.T) {
	g := &guide{addr: "127.0.0.1:40000", dir: "/tmp/x", db: "foodpipe_test_1"}
	tests := []struct{ in, want string }{
		{"./foodpipe broker --data-dir /tmp/foodpipe-kafka", "./foodpipe broker --listen 127.0.0.1:40000 --data-dir /tmp/x/kafka"},
		{"kcat -P -b 127.0.0.1:9092 -t food-orders", "kcat -P -b 127.0.0.1:40000 -t food-orders"},
		{"createdb -h 127.0.0.1 -U postgres foodpipe", "createdb -h 127.0.0.1 -U postgres foodpipe_test_1"},
		{"./foodpipe consume --id alice", "./foodpipe consume --id alice"},
	}
	for _, tt := range tests {
		if got := g.rewrite(tt.in); got != tt.want {
			t.Errorf("rewrite(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
