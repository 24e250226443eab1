package lab_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The transaction lesson in the page: a transaction of 12 orders opened
// from it holds each lane it wrote to at its last stable offset, below the
// high watermark, its records drawn pending in the read_uncommitted row and
// not given to read_committed; aborted, they are drawn aborted beside their
// markers and the orders group reads past them storing none; a second one
// committed is stored whole. The three lesson steps tick, and a second
// transaction while one is open, or an end with none open, is refused.
func TestBrowserATransactionHoldsTheGroupUntilItEnds(t *testing.T) {
	tl := startLab(t, 2, 10)
	b := openBrowser(t, tl.URL, 1280, 900)
	b.until(30*time.Second, "three lanes filled", lanesFilled)

	b.do(chromedp.SetValue(chromedp.CSS("#txn-orders"), "12"), chromedp.Click(chromedp.CSS("#txn-begin")))
	b.until(15*time.Second, "the transaction open, its 12 records pending", `document.querySelector("#txn-state").dataset.open === "true" &&
		document.querySelectorAll("#lanes .txn-row:first-child .chip.txn-pending").length === 12`)
	// Where it wrote, the last stable offset stays below the high
	// watermark, said in words, and read_committed is given none of it.
	b.until(10*time.Second, "a lane held at its LSO below the high watermark", `[...document.querySelectorAll("#lanes .lane")].some(l =>
		Number(l.dataset.lso) < Number(l.dataset.hwm) && l.querySelector(".txn-lso").textContent.includes("open transaction: read_committed readers wait here"))`)
	if n := evaluate[int](b, `document.querySelectorAll("#lanes .txn-row:nth-child(2) .chip:not(.txn-hole)").length`); n != 0 {
		t.Errorf("read_committed is shown given %d records of an open transaction", n)
	}
	// The lane's plain orders written after the transaction's first record
	// are held back with it.
	b.until(10*time.Second, "the lanes' own chips past the LSO faded as held", `[...document.querySelectorAll("#lanes .lane")].every(l =>
		[...l.querySelectorAll(":scope > .chips > .chip")].every(c => c.classList.contains("held") === (Number(l.dataset.lso) < Number(l.dataset.hwm) &&
			Number(c.dataset.offset) >= Number(l.dataset.lso)))) && document.querySelectorAll("#lanes .chip.held").length > 0`)
	b.ticked(10*time.Second, "Begin a transaction")
	b.until(5*time.Second, "the timeline told of it", `[...document.querySelectorAll('#timeline li[data-kind="txn"]')].some(li =>
		/transaction 1 of 12 orders opened .*offsets p[0-9]/.test(li.textContent))`)
	b.shot("open")

	// One at a time, and said so.
	if code, body := tl.post(t, "/api/txn/begin", `{"orders":5}`); code != http.StatusConflict || !strings.Contains(body, "a transaction is open already") {
		t.Errorf("a second transaction while one is open: %d %s, want 409 saying one is open", code, body)
	}

	b.do(chromedp.Click(chromedp.CSS("#txn-abort")))
	b.until(20*time.Second, "the 12 records drawn aborted beside an abort marker, none given to read_committed",
		`document.querySelectorAll("#lanes .txn-row:first-child .chip.txn-aborted").length === 12 &&
		document.querySelectorAll("#lanes .chip.txn-marker.abort").length >= 1 &&
		document.querySelectorAll("#lanes .txn-row:nth-child(2) .chip.txn-aborted").length === 0 &&
		[...document.querySelectorAll("#lanes .txn-note")].some(n => n.textContent.includes("never read by read_committed"))`)
	b.until(30*time.Second, "the orders group past the aborted records, none stored",
		`document.querySelector("#txn-state").dataset.outcome === "aborted" && document.querySelector("#txn-state").dataset.readPast === "true"`)
	if stored := evaluate[string](b, `document.querySelector("#txn-state").dataset.stored`); stored != "0" {
		t.Errorf("the orders group stored %s orders of an aborted transaction", stored)
	}
	b.ticked(10*time.Second, "Abort it")
	b.until(5*time.Second, "every lane stable again", `[...document.querySelectorAll("#lanes .lane")].every(l => l.dataset.lso === l.dataset.hwm)`)
	b.shot("aborted")

	if code, body := tl.post(t, "/api/txn/commit", `{}`); code != http.StatusConflict || !strings.Contains(body, "no transaction is open") {
		t.Errorf("a commit with no transaction open: %d %s, want 409 saying none is open", code, body)
	}

	b.do(chromedp.Click(chromedp.CSS("#txn-begin")))
	b.until(15*time.Second, "a second transaction open", `document.querySelector("#txn-state").dataset.open === "true" &&
		document.querySelectorAll("#lanes .txn-row:first-child .chip.txn-pending").length === 12`)
	b.do(chromedp.Click(chromedp.CSS("#txn-commit")))
	b.until(30*time.Second, "its 12 records committed, given to read_committed, and stored",
		`document.querySelectorAll("#lanes .txn-row:first-child .chip.txn-committed").length === 12 &&
		document.querySelectorAll("#lanes .txn-row:nth-child(2) .chip.txn-committed").length === 12 &&
		document.querySelector("#txn-state").dataset.outcome === "committed" && document.querySelector("#txn-state").dataset.stored === "12"`)
	b.ticked(10*time.Second, "Commit one")
	// The aborted one's orders are still not stored, now its lanes moved on.
	s := tl.state(t)
	if len(s.Txn.Ended) != 2 || s.Txn.Ended[1].Outcome != "aborted" || s.Txn.Ended[1].Stored != 0 {
		t.Errorf("the transactions ended: %+v, want the first aborted with none stored", s.Txn.Ended)
	}
	b.shot("committed")
	b.finish()
}
