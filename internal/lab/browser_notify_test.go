package lab_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"foodpipe/internal/mail"
	"foodpipe/internal/order"
)

// The notifications panel, through the page: the notifier started from it
// emails the orders' customers through a Mailpit the lab starts, and the
// panel lists them; the kill button holds it at its crash point after it
// sent a batch and before it recorded it, kills it there and starts it
// again, and once its successor has settled the claims the panel shows at
// least one duplicate, as many as PostgreSQL's in_doubt predicts and as the
// mail server received. Once the notifier has caught up, every stored order
// has an email (or, for the customer whose address the server refuses, a
// refusal), and no email is of an order that is not stored: the invalid
// ones sent from the page got none.
func TestBrowserKillingTheNotifierBetweenSendAndRecordShowsItsDuplicates(t *testing.T) {
	tl := startLab(t, 2, 50)
	b := openBrowser(t, tl.URL, 1280, 2000)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	b.do(chromedp.Click(chromedp.CSS("#notify-start")))
	b.until(60*time.Second, "emails listed as they arrive", `document.querySelector("#notify").dataset.status === "running" &&
		document.querySelectorAll("#notify-mail tbody tr[data-order^='ORD-']").length > 0 &&
		Number(document.querySelector("#notify-counts [data-k=received]").dataset.n) >= 20`)
	b.ticked(10*time.Second, "Start the notifier")
	// Invalid orders: the orders group sets them aside; nobody emails them.
	for _, reason := range []string{"unknown_status", "invalid_quantity"} {
		b.do(chromedp.SetValue(chromedp.CSS("#reason"), reason), chromedp.Click(chromedp.CSS("#send-invalid")))
		b.until(20*time.Second, "a "+reason+" dead letter", `document.querySelector('#dead tr[data-reason="`+reason+`"]') !== null`)
	}

	b.do(chromedp.Click(chromedp.CSS("#notify-kill")))
	took := b.until(3*time.Minute, "the round final", `document.querySelector("#notify-round").dataset.final === "true"`)
	t.Logf("final %v after the press", took.Round(time.Millisecond))
	round := evaluate[map[string]string](b, `({...document.querySelector("#notify-round").dataset})`)
	num := func(k string) int64 {
		n, err := strconv.ParseInt(round[k], 10, 64)
		if err != nil {
			t.Fatalf("round's %s: %q", k, round[k])
		}
		return n
	}
	dups, resent, elsewhere, unrecorded := num("duplicates"), num("resent"), num("elsewhere"), num("unrecorded")
	t.Logf("held %s claims, %d sent and not recorded; sent again %d (in_doubt), %d duplicates at the mail server, %d elsewhere, %s refused",
		round["held"], unrecorded, resent, dups, elsewhere, round["refused"])
	if dups < 1 || dups != resent || elsewhere != 0 {
		t.Errorf("the panel shows %d duplicates, in_doubt predicts %d, %d elsewhere: want at least 1, equal, none elsewhere", dups, resent, elsewhere)
	}
	if unrecorded < dups {
		t.Errorf("%d emails sent and not recorded, fewer than the %d duplicates", unrecorded, dups)
	}
	b.until(5*time.Second, "the repeated emails listed, each received twice",
		`[...document.querySelectorAll("#notify-repeated tbody tr")].length > 0 && [...document.querySelectorAll("#notify-repeated tbody tr")].every(tr => tr.dataset.times === "2")`)
	b.ticked(10*time.Second, "Kill it between sending a batch and recording it")
	b.ticked(10*time.Second, "See its successor send those emails again")

	// The producer paused, the notifier catches up; then the database and
	// the mail server are asked, without the lab.
	b.do(chromedp.Click(chromedp.CSS("#pause")))
	b.until(60*time.Second, "the notifier caught up, nothing left claimed", `(() => { const n = (k) => Number(document.querySelector("#notify-counts [data-k=" + k + "]").dataset.n);
		return document.querySelector("#producer-state").textContent.startsWith("paused") && n("lag") === 0 && document.querySelector("#notify").dataset.sending === "0" && n("received") === n("sent") + n("duplicates"); })()`)
	in, err := mail.ReadInbox(context.Background(), tl.state(t).Notify.API)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := tl.Database()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var inDoubt int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(in_doubt), 0) FROM notifications WHERE group_id = 'order-notifications' AND state = 'sent'`).Scan(&inDoubt); err != nil {
		t.Fatal(err)
	}
	if int64(in.Duplicates) != inDoubt || inDoubt != dups {
		t.Errorf("the mail server holds %d duplicates, the notifications table's in_doubt says %d, the page %d", in.Duplicates, inDoubt, dups)
	}
	rows, err := conn.Query(ctx, `SELECT order_id, customer_id FROM orders`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	var id, customer string
	if _, err := pgx.ForEachRow(rows, []any{&id, &customer}, func() error { stored[id] = customer; return nil }); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range in.Messages {
		got[mail.OrderOf(m.MessageID)]++
	}
	for id, n := range got {
		if _, ok := stored[id]; !ok {
			t.Errorf("an email (%d) for %q, which the orders table does not hold: an invalid order was notified", n, id)
		}
	}
	missing := 0
	for id, customer := range stored {
		if got[id] == 0 && customer != order.MovedAway {
			missing++
			if missing <= 5 {
				t.Errorf("order %s of %s has no email", id, customer)
			}
		}
	}
	var strays int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM notifications n WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = n.order_id)`).Scan(&strays); err != nil {
		t.Fatal(err)
	}
	if strays != 0 {
		t.Errorf("%d notifications of orders the orders table does not hold", strays)
	}
	t.Logf("%d orders stored, %d emails received (%d distinct), %d duplicates", len(stored), len(in.Messages), in.Distinct, in.Duplicates)
	b.shotOf("panel", "#notify")
	b.finish()
}
