// The notifications panel: a notifier emailing each customer through a real
// mail server, what the server received and what PostgreSQL recorded, and a
// kill between sending and recording that shows the duplicates at least once
// allows, counted from both (lab/notify.go). Loaded after app.js, whose $,
// el and post it uses; app.js's draw calls drawNotify on every snapshot.
"use strict";

function wireNotify() {
  $("notify-start").onclick = () => post("/api/notify/start");
  $("notify-kill").onclick = () => post("/api/notify/kill");
}

function ntTime(t) {
  return new Date(t).toLocaleTimeString([], { hour12: false });
}

// ntStatus says, in a sentence, where the panel stands.
function ntStatus(v) {
  const r = v.round;
  const who = v.id ? `${v.id} (pid ${v.pid})` : "the notifier";
  switch (v.status) {
    case "off": return "The notifier is not running. Start it: it reads the topic from its start and emails every order's customer.";
    case "running": return v.ended ? `${who} ended: start it again.` : `${who} is emailing each order's customer through ${v.server}. Kill it at its crash point when you are ready (the producer must be running).`;
    case "holding": return `${who} was restarted armed: at its next batch it sends the emails, then stops itself at ${v.crash_point}, before recording them.`;
    case "settling": return `Killed (SIGKILL) at ${ntTime(r.killed_at)} with ${r.unrecorded} emails sent and not recorded; restarted: its successor is taking over the claims…`;
    case "final": return `Final: killed at ${ntTime(r.killed_at)} at ${v.crash_point}, restarted, every claim settled. Counted from PostgreSQL and the mail server's API.`;
    case "failed": return `The round failed: ${r && r.error}`;
  }
  return v.status;
}

// ntCount is one figure of the counts row: a number, its name, where it comes from.
function ntCount(key, n, label, from, cls) {
  const d = el("div", { className: "nt-count " + (cls || "") },
    el("span", { className: "nt-n", textContent: n < 0 ? "–" : String(n) }),
    el("span", { className: "nt-label", textContent: label }),
    el("span", { className: "nt-from muted", textContent: from }));
  d.dataset.k = key;
  d.dataset.n = n;
  return d;
}

// ntRow is one email: its Message-ID, the order id in it in bold.
function ntRow(m) {
  const at = m.order_id ? m.message_id.indexOf(m.order_id) : -1;
  const mid = at < 0 ? el("code", { textContent: `<${m.message_id}>` }) :
    el("code", {}, "<" + m.message_id.slice(0, at), el("strong", { textContent: m.order_id }), m.message_id.slice(at + m.order_id.length) + ">");
  const tr = el("tr", {},
    el("td", { className: "nt-mid" }, mid),
    el("td", { textContent: m.to }),
    el("td", { className: "num", textContent: ntTime(m.at) }),
    el("td", { className: "num " + (m.times > 1 ? "bad-text" : ""), textContent: m.times > 1 ? `×${m.times}` : "1" }));
  tr.dataset.order = m.order_id;
  tr.dataset.times = m.times;
  return tr;
}

function drawNotify(s) {
  const v = s.notify;
  const box = $("notify");
  box.dataset.status = v.status;
  box.dataset.sending = v.counts.sending;
  const busy = v.status === "holding" || v.status === "settling";
  const running = v.pid && !v.ended;
  $("notify-start").disabled = busy || running;
  $("notify-start").textContent = v.status === "off" ? "Start the notifier" : "Start the notifier again";
  $("notify-kill").disabled = busy || !running;
  $("notify-state").textContent = ntStatus(v);
  $("notify-state").className = v.status === "failed" ? "bad-text" : "";
  $("notify-server").textContent = v.server ? `${v.group} · mail server ${v.server}${v.started ? " (a Mailpit the lab started)" : " (yours, SMTP_URL)"} · API ${v.api}` : v.group;
  $("notify-error").textContent = v.error ? `last reading incomplete: ${v.error}` : "";
  const c = v.counts;
  $("notify-counts").replaceChildren(
    ntCount("sent", c.sent, "sent", "PostgreSQL: rows 'sent'"),
    ntCount("received", c.received, "received", "mail server: emails"),
    ntCount("duplicates", c.duplicates, "duplicates at the receiver", "mail server: a Message-ID again", c.duplicates > 0 ? "warn" : ""),
    ntCount("in_doubt", c.in_doubt, "sent again in doubt", "PostgreSQL: sum of in_doubt"),
    ntCount("refused", c.refused, "refused → dead-letter topic", "PostgreSQL: rows 'refused'"),
    ntCount("lag", v.lag, "lag", `group ${v.group}`));
  const tb = $("notify-mail").querySelector("tbody");
  tb.replaceChildren(...(v.recent.length ? v.recent.map(ntRow) : [el("tr", {}, el("td", { colSpan: 4, className: "muted", textContent: "No email yet." }))]));
  drawNotifyRound(v);
}

function drawNotifyRound(v) {
  const r = v.round;
  const box = $("notify-round");
  box.hidden = !r;
  if (!r) return;
  Object.assign(box.dataset, { final: String(!!r.final), held: r.held, unrecorded: r.unrecorded, resent: r.resent,
    duplicates: r.duplicates, elsewhere: r.elsewhere, refused: r.refused });
  const agree = r.final && r.duplicates === r.resent && r.elsewhere === 0;
  $("notify-round-figures").replaceChildren(
    ntCount("unrecorded", r.unrecorded, "sent, then killed before recording", `of ${r.held} claims left 'sending'`),
    ntCount("resent", r.resent, "sent again, as in_doubt predicts", "PostgreSQL: in_doubt of those rows"),
    ntCount("round-duplicates", r.duplicates, "duplicates the mail server received", "mail server: same Message-ID twice", r.final ? (agree ? "good" : "warn") : ""));
  $("notify-why").textContent = r.final ? r.why : (r.error ? "" : "counting…");
  const tb = $("notify-repeated").querySelector("tbody");
  tb.replaceChildren(...r.repeated.map(ntRow));
  $("notify-repeated").hidden = r.repeated.length === 0;
  $("notify-repeated-more").textContent = r.duplicates > r.repeated.length ? `and ${r.duplicates - r.repeated.length} more` : "";
}

wireNotify();
