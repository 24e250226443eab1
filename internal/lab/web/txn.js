// Transactions on the lab's page: the controls, and in each lane what a
// read_uncommitted reader reads of transactions beside what a
// read_committed one (as the groups read) is given, with the last stable
// offset against the high watermark. Everything shown comes from the
// snapshot's txn part, which the lab reads from Kafka (txn.go).
"use strict";

(() => {
  $("txn-begin").onclick = () => post("/api/txn/begin", { orders: Number($("txn-orders").value) });
  $("txn-commit").onclick = () => post("/api/txn/commit");
  $("txn-abort").onclick = () => post("/api/txn/abort");
})();

const txnStateName = { pending: "pending: its transaction is open", committed: "committed", aborted: "aborted: read_committed readers never see it" };

// txnSummary says, in words, what one transaction is now.
function txnSummary(t, timeout) {
  const stored = `orders group stored ${t.stored} of its ${t.orders} orders`;
  switch (t.outcome) {
    case "open": {
      const age = Math.max(0, Math.round((Date.now() - new Date(t.opened)) / 1000));
      return `transaction ${t.seq} open for ${age} s: ${t.orders} orders at ${t.offsets} · ${stored} · ` +
        `the broker aborts it by itself after ${timeout} s`;
    }
    case "ending": return `transaction ${t.seq} ending: waiting for its markers in the log`;
    case "aborted":
      return `transaction ${t.seq} aborted${t.by_broker ? " by the broker (timeout)" : ""}: ${t.orders} records stay in the log, ` +
        `never read by read_committed groups · ${stored}`;
    default: return `transaction ${t.seq} committed · ${stored}`;
  }
}

// drawTxn draws the controls' state.
function drawTxn(s) {
  const x = s.txn;
  const box = $("txn-state");
  const lines = [];
  if (x.open) lines.push(txnSummary(x.open, x.timeout));
  if (x.ended.length) lines.push((x.open ? "last ended: " : "") + txnSummary(x.ended[0], x.timeout));
  if (!lines.length) lines.push("no transaction yet: begin one and watch the lanes");
  box.replaceChildren(...lines.map((t) => el("span", { textContent: t })));
  const last = x.open || x.ended[0];
  Object.assign(box.dataset, { open: x.open ? "true" : "false", outcome: last ? last.outcome : "",
    stored: last ? last.stored : 0, orders: last ? last.orders : 0, readPast: last ? last.read_past : false });
  $("txn-begin").disabled = !!x.open;
  $("txn-commit").disabled = $("txn-abort").disabled = !x.open || x.open.outcome !== "open";
}

// drawTxnLane draws under a lane's chips its transactions as the two
// readers read them, and where read_committed readers wait.
function drawTxnLane(lane, l, s) {
  let box = lane.querySelector(".txn");
  if (!box) {
    box = el("div", { className: "txn" });
    lane.append(box);
  }
  const tl = (s.txn.lanes || []).find((t) => t.partition === l.partition);
  const recs = tl ? tl.records : [];
  const held = l.high_watermark - l.last_stable;
  const count = (st) => recs.filter((m) => m.kind === "record" && m.state === st).length;
  Object.assign(lane.dataset, { lso: l.last_stable, pending: count("pending"), aborted: count("aborted"), committed: count("committed") });
  box.hidden = !recs.length && held <= 0;
  if (box.hidden) return;
  const chip = (m) => {
    const c = el("span", { className: `chip txn-${m.kind === "record" ? m.state : "marker " + m.kind}` });
    c.dataset.offset = m.offset;
    if (m.kind === "record") {
      c.title = `offset ${m.offset} · customer ${m.key} · ${m.txn ? "transaction " + m.txn + " · " : ""}${txnStateName[m.state]}`;
      if (m.state !== "aborted") c.style.background = hue(m.key);
    } else {
      c.textContent = m.kind;
      c.title = `offset ${m.offset} · the ${m.kind} marker: a control record that ends the transaction in this partition`;
    }
    return c;
  };
  const slot = (m) => {
    if (m.read_committed) return chip(m);
    const c = el("span", { className: "chip txn-hole" + (m.kind === "record" && m.state === "pending" ? " waiting" : "") });
    c.title = m.kind !== "record" ? `offset ${m.offset}: a marker; no reader is given it` :
      m.state === "aborted" ? `offset ${m.offset}: aborted, skipped` : `offset ${m.offset}: not given yet, the transaction is open`;
    return c;
  };
  const aborted = count("aborted");
  const rows = [
    el("div", { className: "txn-row" }, el("span", { className: "txn-label", textContent: "read_uncommitted reads" }),
      el("span", { className: "chips" }, ...recs.map(chip)),
      aborted ? el("span", { className: "txn-note aborted", textContent: `aborted: ${aborted} record(s), never read by read_committed` }) : ""),
    el("div", { className: "txn-row" }, el("span", { className: "txn-label", textContent: "read_committed is given" }),
      el("span", { className: "chips" }, ...recs.map(slot))),
  ];
  // The lane's own chips past the LSO are held back too: plain orders
  // written after the transaction's first record.
  for (const c of lane.querySelectorAll(".lane > .chips > .chip")) c.classList.toggle("held", held > 0 && Number(c.dataset.offset) >= l.last_stable);
  if (held > 0) {
    const pending = count("pending");
    rows.push(el("p", { className: "txn-lso" },
      el("strong", { textContent: `LSO ${l.last_stable} < high watermark ${l.high_watermark}` }),
      ` · open transaction: read_committed readers wait here. The orders group's committed offset is ${l.committed < 0 ? "–" : l.committed}; ` +
      `${held} offset(s) held back: ${pending} of the transaction and the plain orders after it (their chips above, faded).`));
  } else {
    rows.push(el("p", { className: "txn-lso ended", textContent: `LSO ${l.last_stable} = high watermark: no transaction open here` }));
  }
  box.replaceChildren(...rows);
}
