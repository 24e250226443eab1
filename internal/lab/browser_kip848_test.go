package lab_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"foodpipe/internal/harness"
)

// Under KIP-848 each member's card says its epoch and its target
// assignment, as the broker describes the member: a killed member keeps
// its target until its session times out, then the one left is meant to
// own every partition, at an epoch past the one it had. The KIP-848
// lesson's two steps tick.
func TestBrowserAKIP848MembersCardShowsItsEpochAndTarget(t *testing.T) {
	tl := startLabOn(t, harness.ChildBroker, "", 2, 20, "CONSUMER_GROUP_PROTOCOL", "consumer")
	b := openBrowser(t, tl.URL, 1280, 800)
	b.until(30*time.Second, "three lanes filled", lanesFilled)
	card := func(id string) string { return `document.querySelector('tr[data-member="` + id + `"]')` }
	b.until(30*time.Second, "both cards with an epoch and a target", `["consumer-1", "consumer-2"].every(id => {
		const tr = document.querySelector('tr[data-member="' + id + '"]');
		return tr && Number(tr.dataset.epoch) > 0 && /epoch [0-9]+, target [0-9]/.test(tr.cells[3].textContent); })`)
	epoch := evaluate[string](b, card("consumer-1")+`.dataset.epoch`)
	b.ticked(10*time.Second, "Run the lab on it")
	b.shot("kip848-epochs")

	// Under KIP-848 a partition reaches its target owner only once the
	// member before it revoked it: consumer-2 is killed once it owns one.
	b.until(30*time.Second, "consumer-2 owning a lane", `[...document.querySelectorAll("#lanes .lane")].some(l => l.dataset.owner === "consumer-2")`)
	b.do(chromedp.Click(chromedp.CSS(`tr[data-member="consumer-2"] button[data-action="kill"]`)))
	b.until(sessionTimeout+20*time.Second, "consumer-1 meant to own every partition at a later epoch",
		card("consumer-1")+`.cells[3].textContent.includes("target 0, 1, 2") && Number(`+card("consumer-1")+`.dataset.epoch) > `+epoch)
	b.until(10*time.Second, "consumer-2's card without an epoch once the broker dropped it", card("consumer-2")+`.dataset.epoch === ""`)
	b.ticked(10*time.Second, "Kill or stop a consumer that owns partitions")
	b.shot("kip848-after-kill")
	b.finish()
}
