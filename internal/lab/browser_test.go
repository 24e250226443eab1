package lab_test

// Tests in a real browser: Debian's chromium, driven by chromedp, against a
// lab of its own for each test. Each waits for what a user would see in the
// page, with a deadline, and saves a screenshot of each state.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// screenshotDir is where the browser tests leave their screenshots (git
// ignores it).
const screenshotDir = "testdata/screenshots"

// browser is one headless chromium with one tab on a lab's page.
type browser struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	// errs are the console's errors and the page's uncaught exceptions.
	errs []string
}

// chromium finds the browser, or fails saying how to install it.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("a browser: make test runs it")
	}
	if p := os.Getenv("FOODPIPE_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the browser tests need chromium: run scripts/test-deps (Debian: apt-get install chromium), "+
			"or set FOODPIPE_CHROMIUM to a Chromium binary: %v", err)
	}
	return p
}

// openBrowser starts chromium with a window of w×h and opens url.
func openBrowser(t *testing.T, url string, w, h int) *browser {
	t.Helper()
	// Without the networking flags chromium calls home, which the closed
	// network of CI turns into a flood of failing requests.
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(w, h))
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, b.listen); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(w), int64(h)), chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return b
}

func (b *browser) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, string(a.Value)+a.Description)
		}
		msg = "console.error: " + strings.Join(parts, " ")
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		msg = "log: " + ev.Entry.Text + " " + ev.Entry.URL
	default:
		return
	}
	b.mu.Lock()
	b.errs = append(b.errs, msg)
	b.mu.Unlock()
}

// until evaluates the JavaScript expression cond in the page until it is
// true, or fails after within with a screenshot of how the page looked.
func (b *browser) until(within time.Duration, what, cond string) time.Duration {
	b.t.Helper()
	start := time.Now()
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool]("Boolean("+cond+")"))
		if err != nil {
			b.t.Fatalf("evaluate %s: %v", cond, err)
		}
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
			b.t.Fatalf("not within %v: %s (%s)", within, what, cond)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// do runs actions in the page.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// shot saves a screenshot of the whole page as a PNG.
func (b *browser) shot(name string) {
	b.t.Helper()
	// From the top: a click scrolls the page, and the sticky lessons panel
	// would be drawn part way down the whole-page picture.
	b.do(chromedp.Evaluate[chromedp.Void]("window.scrollTo(0, 0)"))
	b.save(name, chromedp.FullScreenshot(100))
}

// save takes the screenshot capture makes and writes it as a PNG named
// after the test and name.
func (b *browser) save(name string, capture chromedp.Action[[]byte]) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, capture)
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dir, _ := filepath.Abs(screenshotDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, b.t.Name()+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// finish checks what must hold at the end of every browser test: the
// invariants panel is green and the console has no error.
func (b *browser) finish() {
	b.t.Helper()
	b.until(30*time.Second, "the invariants green",
		`document.querySelector("#invariants").dataset.allOk === "true" && document.querySelectorAll("#invariants li.ok").length === 3`)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		b.t.Errorf("the browser console has errors:\n%s", strings.Join(b.errs, "\n"))
	}
}

// lanesFilled: three partition lanes, each with rows stored and messages shown.
const lanesFilled = `(() => { const ls = [...document.querySelectorAll("#lanes .lane")];
	return ls.length === 3 && ls.every(l => Number(l.dataset.rows) > 0 && l.querySelectorAll(".chip").length > 0 && l.dataset.owner !== ""); })()`

// ticked waits until the lesson step that starts with step is ticked.
func (b *browser) ticked(within time.Duration, step string) {
	b.t.Helper()
	b.until(within, "the lesson step ticked: "+step,
		`[...document.querySelectorAll(".lesson li.done")].some(li => li.textContent.startsWith(`+jsString(step)+`))`)
}

// jsString quotes s for JavaScript.
func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

// evaluate runs a JavaScript expression in the page and returns its value.
func evaluate[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// rebalanceLines are the timeline's rebalance lines as the page shows
// them, oldest first.
func (b *browser) rebalanceLines() []string {
	b.t.Helper()
	lines := evaluate[[]string](b, `[...document.querySelectorAll('#timeline li[data-kind="rebalance"]')].map(li => li.textContent)`)
	slices.Reverse(lines)
	return lines
}

// partitionsNamed are every partition a timeline line names, in its lists
// ("[0 2]").
func partitionsNamed(t *testing.T, line string) []int32 {
	t.Helper()
	var out []int32
	for _, m := range regexp.MustCompile(`\[([0-9 ]*)\]`).FindAllStringSubmatch(line, -1) {
		for _, f := range strings.Fields(m[1]) {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("a list in %q: %v", line, err)
			}
			out = append(out, int32(n))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// The page shows the three partitions fill, at a laptop's size and a
// phone's; each chip gives its offset and customer on hover, and the first
// lesson's steps tick as the learner watches and changes the rate.
func TestBrowserShowsThePartitionsFill(t *testing.T) {
	tl := startLab(t, 2, 20)
	b := openBrowser(t, tl.URL, 1280, 800)
	took := b.until(30*time.Second, "three lanes filled", lanesFilled)
	t.Logf("three lanes filled %v after the page opened", took.Round(time.Millisecond))
	b.until(10*time.Second, "the charts drawn", `document.querySelectorAll(".uplot").length === 3`)
	// A chip carries no number that could be read as an offset: its
	// offset and customer are in its tooltip, the customer is its colour.
	b.until(5*time.Second, "chips with their offset and customer on hover", `[...document.querySelectorAll("#lanes .chip")].every(c =>
		c.textContent === "" && /^offset [0-9]+ · customer CUST-[0-9]+/.test(c.title) && c.title.includes(c.dataset.offset))`)
	b.ticked(30*time.Second, "Watch orders arrive")
	b.shot("1280x800")
	b.do(chromedp.SetValue(chromedp.CSS("#rate"), "30"), chromedp.Click(chromedp.CSS("#set-rate")))
	b.ticked(10*time.Second, "Change the producer's rate")
	// At a phone's width nothing spills sideways: one column, every
	// control reachable.
	b.do(chromedp.EmulateViewport(390, 844))
	b.until(5*time.Second, "no horizontal scroll at 390 px", `document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
	b.shot("390x844")
	b.finish()
}

// Adding a consumer, by keyboard, shows a cooperative rebalance: the
// member that gives up a partition keeps the others, and the new one takes
// just that one, as each says on its own /metrics. A fourth consumer, one
// more than the partitions, owns nothing. The group lesson's steps tick.
func TestBrowserAddingAConsumerShowsTheRebalance(t *testing.T) {
	tl := startLab(t, 2, 20)
	b := openBrowser(t, tl.URL, 1280, 800)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	// The group settled first: a member that joined late would take a
	// partition in the same rebalance as consumer-3, and more would move.
	b.until(30*time.Second, "both consumers owning partitions", `["consumer-1", "consumer-2"].every(id =>
		(document.querySelector('tr[data-member="' + id + '"]')?.dataset.owns ?? "") !== "")`)
	before := len(b.rebalanceLines())
	b.do(chromedp.Focus(chromedp.CSS("#add-consumer")), chromedp.KeyEvent(kb.Enter))
	took := b.until(30*time.Second, "consumer-3 owning a partition, told as a rebalance",
		`(document.querySelector('tr[data-member="consumer-3"]')?.dataset.owns ?? "") !== "" &&
		[...document.querySelectorAll('#timeline li[data-kind="rebalance"]')].some(li => li.textContent.includes("consumer-3 took"))`)
	t.Logf("consumer-3 owned a partition %v after the key press", took.Round(time.Millisecond))
	b.until(10*time.Second, "a lane owned by consumer-3", `[...document.querySelectorAll("#lanes .lane")].some(l => l.dataset.owner === "consumer-3")`)
	b.ticked(5*time.Second, "Add a consumer")
	b.ticked(5*time.Second, "You caused a rebalance")

	// What moved, by the members' own word: consumer-3's partitions, and
	// nothing else. The timeline names those only.
	moved := tl.ownedBy(t, "consumer-3")
	if len(moved) != 1 {
		t.Fatalf("consumer-3 says it owns %v, want one partition", moved)
	}
	lines := b.rebalanceLines()[before:]
	var tookLine bool
	for _, line := range lines {
		if got := partitionsNamed(t, strings.SplitN(line, "keeps", 2)[0]); !slices.Equal(got, moved) {
			t.Errorf("the timeline line %q names %v as moving; only %v moved", line, got, moved)
		}
		tookLine = tookLine || strings.Contains(line, fmt.Sprintf("consumer-3 took %v from consumer-", moved))
	}
	if !tookLine {
		t.Errorf("no line says consumer-3 took %v from its last owner:\n%s", moved, strings.Join(lines, "\n"))
	}
	b.shot("rebalanced")

	b.do(chromedp.Click(chromedp.CSS("#add-consumer")))
	b.until(30*time.Second, "consumer-4 running", `document.querySelector('tr[data-member="consumer-4"]')?.dataset.status === "running"`)
	b.ticked(30*time.Second, "Run more consumers than partitions")
	b.finish()
}

// Killing a consumer, then stopping another, as the lessons say: the
// killed member's partition counts its session down on its lane, then
// moves; the stopped member's move at once. Both lessons tick, and the
// timeline names only the partitions that moved, as the members themselves
// report what they own.
func TestBrowserKillingThenStoppingConsumersMovesOnlyTheirPartitions(t *testing.T) {
	tl := startLab(t, 3, 20)
	b := openBrowser(t, tl.URL, 1280, 800)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	b.until(30*time.Second, "each consumer owning one partition", `["consumer-1", "consumer-2", "consumer-3"].every(id =>
		/^[0-9]+$/.test(document.querySelector('tr[data-member="' + id + '"]')?.dataset.owns ?? ""))`)
	had := map[string][]int32{}
	for _, id := range []string{"consumer-1", "consumer-2", "consumer-3"} {
		had[id] = tl.ownedBy(t, id)
	}
	killed := had["consumer-1"]
	if len(killed) != 1 {
		t.Fatalf("the members say they own %v: want one partition each", had)
	}
	lane := fmt.Sprintf(`document.querySelector('#lanes .lane[data-partition="%d"]')`, killed[0])

	before := len(b.rebalanceLines())
	b.do(chromedp.Click(chromedp.CSS(`tr[data-member="consumer-1"] button[data-action="kill"]`)))
	killedAt := time.Now()
	b.until(5*time.Second, "consumer-1 shown killed", `document.querySelector('tr[data-member="consumer-1"]').textContent.includes("killed")`)
	b.until(5*time.Second, "its lane counting its session down", lane+`.dataset.ownerState === "dead" && Number(`+lane+`.dataset.sessionLeft) > 1 &&
		/until its session times out: [0-9]+ s/.test(`+lane+`.textContent)`)
	b.shot("kill-countdown")
	if lessonTicked := evaluate[bool](b, `[...document.querySelectorAll(".lesson li.done")].some(li => li.textContent.startsWith("Kill a consumer"))`); lessonTicked {
		t.Error("the kill's lesson ticked before its partition moved")
	}
	const margin = 10 * time.Second
	took := b.until(sessionTimeout+margin, "the killed member's partition owned by another",
		lane+`.dataset.ownerState === "owns" && ["consumer-2", "consumer-3"].includes(`+lane+`.dataset.owner)`)
	t.Logf("the killed member's partition moved %v after the kill (session timeout %v)", time.Since(killedAt).Round(time.Millisecond), sessionTimeout)
	_ = took
	b.ticked(5*time.Second, "Kill a consumer")
	// By the members' own word: one of them took the killed partition, and
	// each kept its own.
	now := map[string][]int32{"consumer-2": tl.ownedBy(t, "consumer-2"), "consumer-3": tl.ownedBy(t, "consumer-3")}
	taker := ""
	for id, owns := range now {
		if !isSuperset(owns, had[id]) {
			t.Errorf("%s owned %v, now %v: it lost a partition to a kill of another", id, had[id], owns)
		}
		if slices.Contains(owns, killed[0]) {
			taker = id
		}
	}
	if taker == "" {
		t.Fatalf("no member says it owns partition %d: %v", killed[0], now)
	}
	checkOnlyMoved(t, b.rebalanceLines()[before:], killed, fmt.Sprintf("%s took %v from consumer-1", taker, killed))

	// Stop the taker: its partitions, as it says, move at once to the last.
	stopped, last := taker, map[string]string{"consumer-2": "consumer-3", "consumer-3": "consumer-2"}[taker]
	moving := tl.ownedBy(t, stopped)
	lastHad := tl.ownedBy(t, last)
	before = len(b.rebalanceLines())
	b.do(chromedp.Click(chromedp.CSS(`tr[data-member="` + stopped + `"] button[data-action="stop"]`)))
	stoppedAt := time.Now()
	b.until(sessionTimeout+margin, "every lane owned by "+last,
		`[...document.querySelectorAll("#lanes .lane")].every(l => l.dataset.owner === "`+last+`" && l.dataset.ownerState === "owns")`)
	t.Logf("the stopped member's partitions moved %v after the stop", time.Since(stoppedAt).Round(time.Millisecond))
	b.ticked(5*time.Second, "Stop a consumer")
	if owns := tl.ownedBy(t, last); !slices.Equal(owns, []int32{0, 1, 2}) || !isSuperset(owns, lastHad) {
		t.Errorf("%s says it owns %v, want every partition", last, owns)
	}
	checkOnlyMoved(t, b.rebalanceLines()[before:], moving, fmt.Sprintf("%s took %v from %s", last, moving, stopped))
	b.shot("moved")
	b.finish()
}

// checkOnlyMoved checks that the rebalance lines name the partitions that
// moved and no other (what a member gave up, not what it keeps), and that
// one of them says want.
func checkOnlyMoved(t *testing.T, lines []string, moved []int32, want string) {
	t.Helper()
	found := false
	for _, line := range lines {
		if got := partitionsNamed(t, strings.SplitN(line, "keeps", 2)[0]); !isSuperset(moved, got) {
			t.Errorf("the timeline line %q names %v; only %v moved", line, got, moved)
		}
		found = found || strings.Contains(line, want)
	}
	if !found {
		t.Errorf("no rebalance line says %q:\n%s", want, strings.Join(lines, "\n"))
	}
}

// isSuperset reports whether every partition of sub is in set.
func isSuperset(set, sub []int32) bool {
	for _, p := range sub {
		if !slices.Contains(set, p) {
			return false
		}
	}
	return true
}

// Pausing a consumer makes a zombie: its lane counts its session down,
// another member takes its partitions, and resumed, it hears it lost them.
// An exact duplicate sent meanwhile is dropped. Their lessons tick.
func TestBrowserAPausedConsumerIsAZombieUntilResumed(t *testing.T) {
	tl := startLab(t, 2, 20)
	b := openBrowser(t, tl.URL, 1280, 800)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	b.until(30*time.Second, "consumer-1 owning a partition", `(document.querySelector('tr[data-member="consumer-1"]')?.dataset.owns ?? "") !== ""`)
	b.do(chromedp.Click(chromedp.CSS(`tr[data-member="consumer-1"] button[data-action="pause"]`)))
	b.until(5*time.Second, "a lane of consumer-1 frozen, counting down", `[...document.querySelectorAll("#lanes .lane")].some(l =>
		l.dataset.owner === "consumer-1" && l.dataset.ownerState === "frozen" && /session times out in [0-9]+ s/.test(l.textContent))`)
	b.until(5*time.Second, "consumer-1 said to think it owns its partitions", `document.querySelector('tr[data-member="consumer-1"]').textContent.includes("thinks it owns")`)
	b.ticked(5*time.Second, "Pause a consumer")
	b.shot("paused")
	b.until(sessionTimeout+10*time.Second, "every lane owned by consumer-2",
		`[...document.querySelectorAll("#lanes .lane")].every(l => l.dataset.owner === "consumer-2" && l.dataset.ownerState === "owns")`)
	b.do(chromedp.Click(chromedp.CSS(`tr[data-member="consumer-1"] button[data-action="resume"]`)))
	b.ticked(5*time.Second, "Resume it")
	b.until(30*time.Second, "consumer-1 heard it lost its partitions", `[...document.querySelectorAll('#timeline li[data-kind="rebalance"]')].some(li =>
		li.textContent.includes("consumer-1 heard it lost"))`)
	b.do(chromedp.Click(chromedp.CSS("#send-dup")))
	b.ticked(5*time.Second, "Send an exact duplicate")
	b.until(30*time.Second, "the duplicate dropped", `/\+ 1 \+ [0-9]+$/.test(document.querySelector("#invariants li .detail").textContent)`)
	b.shot("resumed")
	b.finish()
}

// An invalid order sent from the page shows in the dead letters with its
// reason and can be replayed once; a conflicting duplicate is set aside
// too. The dead-letter lesson's steps tick.
func TestBrowserAnInvalidOrderShowsAsADeadLetter(t *testing.T) {
	tl := startLab(t, 1, 10)
	b := openBrowser(t, tl.URL, 1280, 800)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	b.do(chromedp.SetValue(chromedp.CSS("#reason"), "unknown_status"), chromedp.Click(chromedp.CSS("#send-invalid")))
	b.until(20*time.Second, "an unknown_status dead letter with its source",
		`[...document.querySelectorAll('#dead tr[data-reason="unknown_status"]')].some(tr => tr.textContent.includes("partition") && tr.textContent.includes("status"))`)
	b.ticked(5*time.Second, "Send an invalid order")
	b.ticked(5*time.Second, "See it in the dead-letter list")
	b.shot("dead-letter")
	// Replayed unfixed, it fails again: a second dead letter names the first.
	b.do(chromedp.Click(chromedp.CSS(`#dead tr[data-reason="unknown_status"] button`)))
	b.until(20*time.Second, "the replay's dead letter, and the first marked replayed",
		`[...document.querySelectorAll('#dead tr[data-reason="unknown_status"]')].some(tr => tr.textContent.includes("from the replay of")) &&
		[...document.querySelectorAll('#dead tr[data-reason="unknown_status"] button')].some(b => b.disabled && b.textContent === "Replayed")`)
	b.ticked(5*time.Second, "Replay a dead letter")
	b.do(chromedp.Click(chromedp.CSS("#send-conflict")))
	b.until(20*time.Second, "a conflicting_duplicate dead letter", `document.querySelector('#dead tr[data-reason="conflicting_duplicate"]') !== null`)
	b.ticked(5*time.Second, "Send a conflicting duplicate")
	b.shot("replayed")
	b.finish()
}

// Cutting the database for 10 s opens the consumers' breakers, which close
// again once it is back; the banner says plainly it was asked for, and both
// steps of the lesson tick.
func TestBrowserACutDatabaseOpensAndClosesTheBreaker(t *testing.T) {
	tl := startLab(t, 2, 20)
	b := openBrowser(t, tl.URL, 1280, 800)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	b.do(chromedp.SetValue(chromedp.CSS("#cut-seconds"), "10"), chromedp.Click(chromedp.CSS("#cut-db")))
	b.until(5*time.Second, "a notice that the cut was asked for", `!document.querySelector("#notice").hidden &&
		document.querySelector("#notice").textContent.includes("database cut off from the consumers as you asked")`)
	opened := b.until(20*time.Second, "a breaker open", `document.querySelectorAll('tr[data-breaker="open"]').length > 0`)
	b.until(10*time.Second, "lag growing", `[...document.querySelectorAll("#lanes .lane")].some(l => Number(l.dataset.lag) > 10)`)
	b.ticked(5*time.Second, "Cut the database")
	b.shot("breaker-open")
	closed := b.until(45*time.Second, "every breaker closed and the lag drained",
		`document.querySelectorAll('tr[data-breaker="open"]').length === 0 && !document.querySelector("#fault-state").textContent.includes("cut off") &&
		[...document.querySelectorAll("#lanes .lane")].every(l => Number(l.dataset.lag) < 10)`)
	t.Logf("breaker open %v after the cut; all closed and drained %v after that", opened.Round(time.Millisecond), closed.Round(time.Millisecond))
	b.ticked(5*time.Second, "Wait for the line to mend")
	b.shot("recovered")
	b.finish()
}

// Restarting the broker from the page: the banner says plainly what the
// user asked for, never a client's error, and everything comes back by
// itself. The broker lesson ticks.
func TestBrowserRestartingTheBrokerSaysSoPlainly(t *testing.T) {
	tl := startLab(t, 2, 20)
	b := openBrowser(t, tl.URL, 1280, 800)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	// Every banner the page shows from now on, as the user would read it.
	b.do(chromedp.Evaluate[chromedp.Void](`window.banners = new Set();
		new MutationObserver(() => { for (const id of ["notice", "error"]) { const e = document.getElementById(id);
			if (!e.hidden && e.textContent) window.banners.add(id + ": " + e.textContent); } })
		.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true })`))
	b.do(chromedp.Click(chromedp.CSS("#restart-broker")))
	b.until(10*time.Second, "a notice that the restart was asked for", `!document.querySelector("#notice").hidden &&
		document.querySelector("#notice").textContent.includes("broker restarting as you asked; producer retrying")`)
	b.shot("restarting")
	b.until(60*time.Second, "the broker back", `[...document.querySelectorAll("#timeline li")].some(li => li.textContent.includes("broker is back"))`)
	b.ticked(5*time.Second, "Restart the broker")
	b.until(30*time.Second, "orders flowing again, the banners gone", `document.querySelector("#notice").hidden && document.querySelector("#error").hidden &&
		[...document.querySelectorAll("#lanes .lane")].every(l => Number(l.dataset.lag) < 10)`)
	for _, banner := range evaluate[[]string](b, `[...window.banners]`) {
		if !strings.HasPrefix(banner, "notice: ") {
			t.Errorf("the page showed an error for the restart the user asked for: %q", banner)
		}
	}
	b.shot("back")
	b.finish()
}
