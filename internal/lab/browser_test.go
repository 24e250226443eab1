package lab_test

// Tests in a real browser: Debian's chromium, driven by chromedp, against a
// lab of its own for each test. Each waits for what a user would see in the
// page, with a deadline, and saves a screenshot of each state.

import (
	"context"

	"os"
	"os/exec"
	"path/filepath"
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
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
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

// The page shows the three partitions fill, at a laptop's size and a phone's.
func TestBrowserShowsThePartitionsFill(t *testing.T) {
	tl := startLab(t, 2, 20)
	b := openBrowser(t, tl.URL, 1280, 800)
	took := b.until(30*time.Second, "three lanes filled", lanesFilled)
	t.Logf("three lanes filled %v after the page opened", took.Round(time.Millisecond))
	b.until(10*time.Second, "the charts drawn", `document.querySelectorAll(".uplot").length === 3`)
	b.shot("1280x800")
	// At a phone's width nothing spills sideways: one column, every
	// control reachable.
	b.do(chromedp.EmulateViewport(390, 844))
	b.until(5*time.Second, "no horizontal scroll at 390 px", `document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
	b.shot("390x844")
	b.finish()
}

// Adding a consumer, by keyboard, shows a rebalance and the new ownership.
func TestBrowserAddingAConsumerShowsTheRebalance(t *testing.T) {
	tl := startLab(t, 2, 20)
	b := openBrowser(t, tl.URL, 1280, 800)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	b.do(chromedp.Focus(chromedp.CSS("#add-consumer")), chromedp.KeyEvent(kb.Enter))
	took := b.until(30*time.Second, "consumer-3 owning a partition, told as a rebalance",
		`(document.querySelector('tr[data-member="consumer-3"]')?.dataset.owns ?? "") !== "" &&
		[...document.querySelectorAll('#timeline li[data-kind="rebalance"]')].some(li => li.textContent.includes("consumer-3 took"))`)
	t.Logf("consumer-3 owned a partition %v after the key press", took.Round(time.Millisecond))
	b.until(10*time.Second, "a lane owned by consumer-3", `[...document.querySelectorAll("#lanes .lane")].some(l => l.dataset.owner === "consumer-3")`)
	b.shot("rebalanced")
	b.finish()
}

// A killed consumer's partitions move to the others within the session
// timeout, plus a margin for the group to settle and the page to sample.
func TestBrowserAKilledConsumersPartitionsMove(t *testing.T) {
	tl := startLab(t, 2, 20)
	b := openBrowser(t, tl.URL, 1280, 800)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	b.until(10*time.Second, "consumer-2 owning a partition", `(document.querySelector('tr[data-member="consumer-2"]')?.dataset.owns ?? "") !== ""`)
	b.do(chromedp.Click(chromedp.CSS(`tr[data-member="consumer-2"] button[data-action="kill"]`)))
	b.until(5*time.Second, "consumer-2 shown killed", `document.querySelector('tr[data-member="consumer-2"]').textContent.includes("killed")`)
	b.shot("killed")
	const margin = 10 * time.Second
	took := b.until(sessionTimeout+margin, "every lane owned by consumer-1",
		`[...document.querySelectorAll("#lanes .lane")].every(l => l.dataset.owner === "consumer-1")`)
	t.Logf("the killed member's partitions moved %v after the kill (session timeout %v)", took.Round(time.Millisecond), sessionTimeout)
	b.shot("moved")
	b.finish()
}

// An invalid order sent from the page shows in the dead letters with its
// reason, ticks its lesson steps, and can be replayed once.
func TestBrowserAnInvalidOrderShowsAsADeadLetter(t *testing.T) {
	tl := startLab(t, 1, 10)
	b := openBrowser(t, tl.URL, 1280, 800)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	b.do(chromedp.SetValue(chromedp.CSS("#reason"), "unknown_status"), chromedp.Click(chromedp.CSS("#send-invalid")))
	b.until(20*time.Second, "an unknown_status dead letter with its source",
		`[...document.querySelectorAll('#dead tr[data-reason="unknown_status"]')].some(tr => tr.textContent.includes("partition") && tr.textContent.includes("status"))`)
	b.until(5*time.Second, "the lesson steps ticked", `[...document.querySelectorAll(".lesson li.done")].some(li => li.textContent.includes("Send an invalid order")) &&
		[...document.querySelectorAll(".lesson li.done")].some(li => li.textContent.includes("See it in the dead-letter list"))`)
	b.shot("dead-letter")
	// Replayed unfixed, it fails again: a second dead letter names the first.
	b.do(chromedp.Click(chromedp.CSS(`#dead tr[data-reason="unknown_status"] button`)))
	b.until(20*time.Second, "the replay's dead letter, and the first marked replayed",
		`[...document.querySelectorAll('#dead tr[data-reason="unknown_status"]')].some(tr => tr.textContent.includes("from the replay of")) &&
		[...document.querySelectorAll('#dead tr[data-reason="unknown_status"] button')].some(b => b.disabled && b.textContent === "Replayed")`)
	b.shot("replayed")
	b.finish()
}

// Cutting the database for 10 s opens the consumers' breakers, which close
// again once it is back.
func TestBrowserACutDatabaseOpensAndClosesTheBreaker(t *testing.T) {
	tl := startLab(t, 2, 20)
	b := openBrowser(t, tl.URL, 1280, 800)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	b.do(chromedp.SetValue(chromedp.CSS("#cut-seconds"), "10"), chromedp.Click(chromedp.CSS("#cut-db")))
	opened := b.until(20*time.Second, "a breaker open", `document.querySelectorAll('tr[data-breaker="open"]').length > 0`)
	b.until(10*time.Second, "lag growing", `[...document.querySelectorAll("#lanes .lane")].some(l => Number(l.dataset.lag) > 10)`)
	b.shot("breaker-open")
	closed := b.until(45*time.Second, "every breaker closed and the lag drained",
		`document.querySelectorAll('tr[data-breaker="open"]').length === 0 && !document.querySelector("#fault-state").textContent.includes("cut off") &&
		[...document.querySelectorAll("#lanes .lane")].every(l => Number(l.dataset.lag) < 10)`)
	t.Logf("breaker open %v after the cut; all closed and drained %v after that", opened.Round(time.Millisecond), closed.Round(time.Millisecond))
	b.shot("recovered")
	b.finish()
}
