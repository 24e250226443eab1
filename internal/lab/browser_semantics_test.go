package lab_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
)

// The delivery-semantics panel, through the page: the teaching groups
// started, one button kills a member of each of the three groups at once,
// mid-batch, at its crash point, and once the counts are final at most
// once has lost orders, at least once has stored some twice, and the
// orders group has stored every one once; every order is accounted for in
// each group. The lesson's steps tick, and the invariants stay green.
func TestBrowserKillingAMemberOfEachGroupShowsTheThreeSemantics(t *testing.T) {
	tl := startLab(t, 2, 100)
	b := openBrowser(t, tl.URL, 1280, 900)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	b.do(chromedp.Click(chromedp.CSS("#sem-start")))
	b.until(30*time.Second, "the teaching groups running", `document.querySelector("#semantics").dataset.status === "running" &&
		[...document.querySelectorAll("#sem-table tbody tr")].filter(tr => /pid [0-9]+/.test(tr.textContent)).length === 2`)
	b.ticked(10*time.Second, "Start the two teaching groups")

	b.do(chromedp.Click(chromedp.CSS("#sem-kill")))
	took := b.until(3*time.Minute, "the counts final", `document.querySelector("#sem-table").dataset.final === "true"`)
	t.Logf("final counts %v after the press", took.Round(time.Millisecond))
	rows := evaluate[[]map[string]string](b, `[...document.querySelectorAll("#sem-table tbody tr")].map(tr => ({...tr.dataset}))`)
	if len(rows) != 3 {
		t.Fatalf("the panel has %d groups, want 3: %v", len(rows), rows)
	}
	num := func(r map[string]string, k string) int64 {
		n, err := strconv.ParseInt(r[k], 10, 64)
		if err != nil {
			t.Fatalf("%s of %s: %q", k, r["semantics"], r[k])
		}
		return n
	}
	got := map[string][4]int64{} // lost, twice, once, produced
	for _, r := range rows {
		c := [4]int64{num(r, "lost"), num(r, "twice"), num(r, "once"), num(r, "produced")}
		got[r["semantics"]] = c
		t.Logf("%-13s lost %3d  twice %3d  once %4d  of %4d", r["semantics"], c[0], c[1], c[2], c[3])
		if c[3] < 1 || c[0]+c[1]+c[2] != c[3] {
			t.Errorf("%s: lost %d + twice %d + once %d do not account for the %d orders", r["semantics"], c[0], c[1], c[2], c[3])
		}
	}
	amo, alo, eo := got["at-most-once"], got["at-least-once"], got["exactly-once"]
	if amo[3] != alo[3] || alo[3] != eo[3] {
		t.Errorf("the groups counted different orders: %d, %d, %d", amo[3], alo[3], eo[3])
	}
	if amo[0] < 1 || amo[1] != 0 {
		t.Errorf("at most once lost %d and stored %d twice: want orders lost and none twice", amo[0], amo[1])
	}
	if alo[1] < 1 || alo[0] != 0 {
		t.Errorf("at least once stored %d twice and lost %d: want orders twice and none lost", alo[1], alo[0])
	}
	if eo[0] != 0 || eo[1] != 0 {
		t.Errorf("the orders group lost %d and stored %d twice: want neither", eo[0], eo[1])
	}
	// The table says it without the lab: at least once's doubles are rows.
	url, _ := tl.Database()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var doubled int64
	if err := conn.QueryRow(ctx, "SELECT count(*) - count(DISTINCT order_id) FROM teach_at_least_once").Scan(&doubled); err != nil {
		t.Fatal(err)
	}
	if doubled < alo[1] {
		t.Errorf("teach_at_least_once holds %d extra rows, fewer than the %d orders the panel says were stored twice", doubled, alo[1])
	}
	b.ticked(10*time.Second, "Kill one member of each")
	b.ticked(10*time.Second, "See at most once lose orders")
	b.shotOf("panel", "#semantics")
	b.shot("final")
	b.finish()
}

// shotOf saves a screenshot of the element sel as a PNG, beside shot's.
func (b *browser) shotOf(name, sel string) {
	b.t.Helper()
	b.save(name, chromedp.Screenshot(chromedp.CSS(sel)))
}
