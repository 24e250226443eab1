package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The guide runner must see every marked block, keep a comment after a
// command out of it, join continued lines, and take actions on their own.
func TestGuideParserReadsStepsAsMarked(t *testing.T) {
	doc := "Intro.\n\n" +
		"<!-- guide: run -->\n<!-- guide: expect /ok/ -->\n```sh\n./foodpipe status   # look at it\n./foodpipe topic \\\n  keys\n```\n\n" +
		"```sh\nnot run: no directive\n```\n\n" +
		"<!-- guide: interrupt alice -->\n\n" +
		"<!-- guide: start alice bob -->\n```sh\n./foodpipe consume --id alice\n./foodpipe consume --id bob\n```\n\n" +
		"<!-- guide: until /lag 0/ -->\n```sh\n./foodpipe status\n```\n"
	steps, err := parseGuide(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 4 {
		t.Fatalf("%d steps, want 4: %+v", len(steps), steps)
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
	if !slices.Equal(steps[3].directives, []string{"run", "until /lag 0/"}) {
		t.Errorf("fourth step %+v, want until to run its block", steps[3])
	}
}

// A block whose directives do nothing with it would be skipped with its
// checks: the parser refuses it, and the other marks that cannot work.
func TestGuideParserRefusesBlocksItWouldSkip(t *testing.T) {
	for name, doc := range map[string]string{
		"a check alone":           "<!-- guide: expect /ok/ -->\n```sh\n./foodpipe status\n```\n",
		"same on a started block": "<!-- guide: start a -->\n<!-- guide: same /(1) (1)/ -->\n```sh\n./foodpipe consume\n```\n",
		"until on a started one":  "<!-- guide: start a -->\n<!-- guide: until /x/ -->\n```sh\n./foodpipe consume\n```\n",
		"an unknown directive":    "<!-- guide: rn -->\n```sh\n./foodpipe status\n```\n",
		"run and start at once":   "<!-- guide: run -->\n<!-- guide: start a -->\n```sh\n./foodpipe status\n```\n",
		"no block after a mark":   "<!-- guide: run -->\n\nText.\n",
	} {
		t.Run(name, func(t *testing.T) {
			if steps, err := parseGuide(doc); err == nil {
				t.Errorf("parsed as %+v, want an error", steps)
			}
		})
	}
}

// A run block's checks: expect must match, and each match of same must have
// its two groups equal.
func TestGuideChecksARunBlocksOutput(t *testing.T) {
	status := "PARTITION  HIGH WATERMARK  COMMITTED  LAG  ROWS IN DB  OWNER\n" +
		"0          6               6          0    6           alice\n" +
		"1          17              17         0    16          alice\n"
	rows := regexp.MustCompile(`(?m)^\d+ +(\d+) +\d+ +\d+ +(\d+) `)
	if got := (checks{same: []*regexp.Regexp{rows}}).failed([]byte(status)); !strings.Contains(got, "17 and 16 differ") {
		t.Errorf("partition 1 with 17 and 16: %q, want them told apart", got)
	}
	if got := (checks{same: []*regexp.Regexp{regexp.MustCompile(`(?m)^0 +(\d+) +\d+ +\d+ +(\d+) `)}}).failed([]byte(status)); got != "" {
		t.Errorf("partition 0 with 6 and 6: %q, want it to pass", got)
	}
	if got := (checks{same: []*regexp.Regexp{regexp.MustCompile(`(?m)^7 +(\d+) +\d+ +\d+ +(\d+) `)}}).failed([]byte(status)); got == "" {
		t.Error("a same that matches nothing passed")
	}
	if got := (checks{expect: []*regexp.Regexp{regexp.MustCompile(`total lag 0`)}}).failed([]byte(status)); got == "" {
		t.Error("an expect that matches nothing passed")
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
