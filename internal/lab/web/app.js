// The Kafka lab's page: it draws each snapshot the server streams, and
// posts the user's actions. No framework: the DOM is updated in place, so
// that a button keeps the keyboard focus across updates.
"use strict";

const $ = (id) => document.getElementById(id);
let last = null;

// el makes an element with properties and children.
function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const k of kids) e.append(k);
  return e;
}

// A key's colour: the same customer always gets the same hue.
function hue(key) {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
  return `hsl(${h % 360} 65% 42%)`;
}

// post sends an action and shows how it went.
async function post(path, body) {
  const out = $("result");
  out.className = "result";
  out.textContent = "…";
  try {
    const r = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    const j = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw new Error(j.error || r.statusText);
    out.textContent = "done: " + path.replace("/api/", "");
  } catch (e) {
    out.className = "result bad";
    out.textContent = "refused: " + e.message;
  }
}

function wire() {
  $("set-rate").onclick = () => post("/api/producer", { rate: Number($("rate").value), paused: false });
  $("pause").onclick = () => {
    const p = last && last.producer;
    const paused = p ? !p.paused : true;
    post("/api/producer", { rate: Number($("rate").value) || (p ? p.rate : 10), paused });
  };
  $("send-invalid").onclick = () => post("/api/send/invalid", { reason: $("reason").value });
  $("send-dup").onclick = () => post("/api/send/duplicate", { conflicting: false });
  $("send-conflict").onclick = () => post("/api/send/duplicate", { conflicting: true });
  $("cut-db").onclick = () => post("/api/db/cut", { seconds: Number($("cut-seconds").value) });
  $("restart-broker").onclick = () => post("/api/broker/restart", { seconds: 3 });
  $("add-consumer").onclick = () => post("/api/consumers");
  $("analytics-toggle").onclick = () => {
    const a = last && last.analytics;
    post(a && a.status === "running" ? "/api/analytics/stop" : "/api/analytics/start");
  };
}

// draw takes one snapshot.
function draw(s) {
  const first = !last;
  last = s;
  $("error").hidden = !s.error;
  $("error").textContent = s.error || "";
  $("notice").hidden = !s.notice;
  $("notice").textContent = s.notice || "";
  $("where").textContent = `topic ${s.topic} · group ${s.group}`;
  $("topic").textContent = s.topic;
  $("group").textContent = `${s.group} · ${s.group_state || "?"}${protocolText(s)}`;
  $("generation").textContent = `${s.rebalances} rebalance(s) seen. The group's generation is not in the DescribeGroups answer, so the lab counts the rebalances it sees.`;
  const p = s.producer;
  $("producer-state").textContent = p.paused || p.rate === 0 ? `paused · ${p.acked} sent` : `${p.rate} orders/s · ${p.acked} sent`;
  $("pause").textContent = p.paused ? "Resume producer" : "Pause producer";
  if (first) {
    $("rate").value = p.rate;
    const sel = $("reason");
    for (const r of s.reasons) sel.append(el("option", { value: r, textContent: r }));
  }
  const f = s.faults;
  $("cut-db").disabled = !f.can_cut || f.db_cut;
  $("restart-broker").disabled = !f.can_restart_broker || f.broker_restarting;
  $("fault-state").textContent = [
    f.db_cut ? `database cut off, ${Math.ceil(f.db_cut_left)} s left` : "",
    f.broker_restarting ? "broker restarting" : "",
    f.can_restart_broker ? "" : "the broker is yours: the lab does not restart it",
  ].filter(Boolean).join(" · ");
  drawLanes(s);
  if (typeof drawTxn === "function") drawTxn(s); // txn.js
  drawMembers(s);
  drawAnalytics(s);
  drawSemantics(s);
  if (typeof drawNotify === "function") drawNotify(s); // notify.js
  drawTimeline(s);
  drawInvariants(s);
  drawDead(s);
  drawLessons(s);
  drawCharts(s);
}

// ownerText says who owns a lane and what it is doing: the last member that
// said it owns it is kept through a rebalance, and a dead or paused one
// counts its session down, so that the learner sees why the lane waits.
// protocolText names the group's protocol for its header: under KIP-848
// the broker assigns, and the group's epoch counts its changes.
function protocolText(s) {
  if (s.group_protocol === "consumer") return ` · KIP-848 protocol, epoch ${s.group_epoch}`;
  if (s.group_protocol === "classic") return " · classic protocol";
  return "";
}

function ownerText(l, groupState) {
  const who = l.owner;
  const left = Math.ceil(l.session_left || 0);
  const handing = "its session timed out: the group is handing it on";
  switch (l.owner_state) {
    case "owns":
      return groupState && groupState !== "Stable" && groupState !== "Empty" ?
        `owner ${who} · keeps reading it while the group rebalances (${groupState})` : `owner ${who}`;
    case "moving": return `owner ${who} gave it up · waiting for the member that takes it`;
    case "left": return `owner ${who} left the group · handing it on`;
    case "dead": return left > 0 ? `owner ${who} was killed · nobody reads it until its session times out: ${left} s` : `owner ${who} was killed · ${handing}`;
    case "frozen": return left > 0 ? `owner ${who} is paused, no heartbeat · its session times out in ${left} s` : `owner ${who} is paused · ${handing}`;
    default: return "no owner yet";
  }
}

function drawLanes(s) {
  const box = $("lanes");
  for (const l of s.lanes) {
    let lane = box.querySelector(`[data-partition="${l.partition}"]`);
    if (!lane) {
      lane = el("div", { className: "lane" });
      lane.dataset.partition = l.partition;
      lane.append(el("div", { className: "lane-head" }), el("div", { className: "chips", role: "img" }));
      box.append(lane);
    }
    Object.assign(lane.dataset, { hwm: l.high_watermark, rows: l.rows, lag: l.lag, owner: l.owner || "",
      ownerState: l.owner_state, sessionLeft: l.session_left || 0 });
    const waiting = l.owner_state === "dead" || l.owner_state === "frozen";
    const first = l.recent.length ? l.recent[0].offset : null;
    const lastOff = l.recent.length ? l.recent[l.recent.length - 1].offset : null;
    const head = lane.firstChild;
    head.replaceChildren(
      el("strong", { textContent: `partition ${l.partition}` }),
      el("span", { className: "owner " + (waiting ? "waiting" : l.owner_state), textContent: ownerText(l, s.group_state) }),
      el("span", { textContent: `high watermark ${l.high_watermark}` }),
      el("span", { textContent: `committed ${l.committed < 0 ? "–" : l.committed}` }),
      el("span", { textContent: `lag ${l.lag}`, className: l.lag > 50 ? "bad-text" : "" }),
      el("span", { textContent: `rows in PostgreSQL ${l.rows}` }),
      el("span", { className: "muted offsets", textContent: first === null ? "no message yet" : `chips: offsets ${first}–${lastOff}` }),
    );
    const chips = lane.querySelector(":scope > .chips");
    chips.setAttribute("aria-label", first === null ? `no message yet on partition ${l.partition}` :
      `the last ${l.recent.length} messages of partition ${l.partition}, offsets ${first} to ${lastOff}, coloured by customer`);
    // No text on a chip: a number there reads as an offset. The offset and
    // the customer are in its tooltip; the colour is the customer's.
    chips.replaceChildren(...l.recent.map((m) => {
      const c = el("span", { className: "chip " + m.kind, title: `offset ${m.offset} · customer ${m.key}${m.kind === "order" ? "" : " · " + kindName[m.kind]}` });
      c.dataset.offset = m.offset;
      if (m.kind !== "invalid" && m.kind !== "conflict") c.style.background = hue(m.key);
      return c;
    }));
    if (typeof drawTxnLane === "function") drawTxnLane(lane, l, s); // txn.js
  }
}

const kindName = { invalid: "invalid order", conflict: "conflicting duplicate", duplicate: "exact duplicate", replay: "replayed dead letter" };

// keyed keeps one row per key in tbody, in order, made by make and
// updated by update; rows whose key is gone are removed.
function keyed(tbody, items, key, make, update) {
  const seen = new Set();
  let prev = null;
  for (const it of items) {
    const k = String(key(it));
    seen.add(k);
    let row = tbody.querySelector(`tr[data-key="${CSS.escape(k)}"]`);
    if (!row) {
      row = make(it);
      row.dataset.key = k;
    }
    update(row, it);
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== row) tbody.insertBefore(row, want);
    prev = row;
  }
  for (const row of [...tbody.children]) if (!seen.has(row.dataset.key)) row.remove();
}

function drawMembers(s) {
  keyed($("members").tBodies[0], s.members, (m) => m.id, (m) => {
    const tr = el("tr");
    for (let i = 0; i < 5; i++) tr.append(el("td"));
    const act = el("td", { className: "actions" });
    const b = (label, what, danger) => {
      const btn = el("button", { type: "button", textContent: label, className: danger ? "danger" : "" });
      btn.dataset.action = what;
      btn.setAttribute("aria-label", `${label} ${m.id}`);
      btn.onclick = () => post(`/api/consumers/${encodeURIComponent(m.id)}/${btn.dataset.action}`);
      return btn;
    };
    act.append(b("Stop", "stop"), b("Kill", "kill", true), b("Pause", "pause"));
    tr.append(act);
    tr.dataset.member = m.id;
    return tr;
  }, (tr, m) => {
    const c = tr.cells;
    c[0].textContent = m.id;
    c[1].textContent = m.pid;
    c[2].textContent = m.status + (m.exit ? ` (${m.exit})` : "");
    c[2].className = "st-" + m.status;
    const e = m.kip848; // under KIP-848, the broker's word: the member's epoch and target assignment
    c[3].textContent = (m.status === "exited" ? "–" : m.status === "paused" ? `thinks it owns ${m.owns.join(", ") || "nothing"} (paused)` :
      (m.owns.length ? m.owns.join(", ") : "nothing")) +
      (e ? ` · epoch ${e.epoch}${e.epoch === -2 ? " (away)" : ""}, target ${e.target.join(", ") || "nothing"}` : "");
    c[4].textContent = (m.status === "exited" ? "–" : m.breaker_open ? "breaker OPEN · not ready" : m.answering ? (m.ready ? "ready" : "not ready") : "not answering") +
      (m.fenced ? ` · ${m.fenced} late batch(es) fenced` : "");
    c[4].className = m.breaker_open ? "bad-text" : "";
    Object.assign(tr.dataset, { status: m.status, owns: m.owns.join(","), breaker: m.breaker_open ? "open" : "closed", epoch: e ? e.epoch : "" });
    const gone = m.status === "exited";
    const [stop, kill, pause] = c[5].children;
    stop.disabled = kill.disabled = pause.disabled = gone;
    const paused = m.status === "paused";
    pause.dataset.action = paused ? "resume" : "pause";
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-label", `${pause.textContent} ${m.id}`);
  });
}

function drawAnalytics(s) {
  const a = s.analytics;
  $("analytics-group").textContent = `${a.group} · ${a.state || "?"}`;
  const owns = a.members.length ? a.members.map((m) => `${m.id} owns ${m.owns.join(", ") || "nothing"}`).join("; ") : "no member";
  const lags = a.partitions.map((p) => `${p.partition}: ${p.lag}`).join(" · ");
  $("analytics-state").textContent = `${a.status} · lag ${a.lag} (${lags}) · ${a.counted} orders counted · ${owns} · ${a.rebalances} rebalance(s) of its own`;
  const box = $("analytics-state");
  Object.assign(box.dataset, { status: a.status, lag: a.lag, counted: a.counted });
  $("analytics-toggle").textContent = a.status === "running" ? "Stop analytics" : "Start analytics";
  $("analytics-toggle").disabled = a.status === "stopping";
}

function drawTimeline(s) {
  const ol = $("timeline");
  const items = s.timeline.slice(-40).reverse();
  ol.replaceChildren(...items.map((e) => {
    const li = el("li", { textContent: `${new Date(e.at).toLocaleTimeString()} ${e.text}` });
    li.dataset.kind = e.kind;
    return li;
  }));
}

function drawInvariants(s) {
  const ul = $("invariants");
  ul.dataset.allOk = s.invariants.every((i) => i.ok);
  ul.replaceChildren(...s.invariants.map((i) => {
    const li = el("li", { className: i.ok ? "ok" : "bad" },
      el("strong", { textContent: (i.ok ? "✓ holds: " : "✗ BROKEN: ") + i.name }),
      el("span", { className: "detail", textContent: i.detail + (i.offending ? " · " + i.offending.join(", ") : "") }));
    li.dataset.ok = i.ok;
    return li;
  }));
}

function drawDead(s) {
  $("dlq-count").textContent = `${s.dead_total} on the dead-letter topic`;
  keyed($("dead").tBodies[0], s.dead, (d) => d.offset, (d) => {
    const tr = el("tr");
    tr.dataset.reason = d.reason;
    for (let i = 0; i < 4; i++) tr.append(el("td"));
    const btn = el("button", { type: "button", textContent: "Replay" });
    btn.setAttribute("aria-label", `Replay the dead letter at offset ${d.offset}`);
    btn.onclick = () => post("/api/dlq/replay", { offset: d.offset });
    tr.append(el("td", {}, btn));
    return tr;
  }, (tr, d) => {
    const c = tr.cells;
    c[0].textContent = d.offset;
    c[1].textContent = d.reason;
    c[2].textContent = `partition ${d.source_partition} @ ${d.source_offset}`;
    c[3].textContent = d.error + (d.replayed_from ? ` (from the replay of ${d.replayed_from})` : "");
    c[3].className = "err";
    const btn = c[4].firstChild;
    btn.disabled = !d.replayable;
    btn.title = d.replayable ? "send it to the orders topic again, once" : d.why_not;
    btn.textContent = d.replayed_at ? "Replayed" : "Replay";
  });
}

function drawLessons(s) {
  const box = $("lessons");
  box.replaceChildren(...s.lessons.map((l) => el("section", { className: "lesson" },
    el("h3", { textContent: l.title }),
    el("ol", {}, ...l.steps.map((st) => {
      const li = el("li", { className: st.done ? "done" : "", textContent: st.text });
      if (st.done) li.append(el("span", { className: "sr-only", textContent: " (done)" }));
      return li;
    })))));
}

// Charts, made on the first snapshot and fed on every one.
const charts = {};
const palette = ["#1a56db", "#c2410c", "#15803d", "#7e22ce", "#be123c", "#0e7490"];

function chartWidth(id) { return Math.max(260, $(id).clientWidth || 300); }

function makeChart(id, series) {
  const opts = {
    width: chartWidth(id), height: 160, legend: { live: false },
    scales: { x: { time: true } },
    series: [{}, ...series.map((label, i) => ({ label, stroke: palette[i % palette.length], width: 2, spanGaps: false }))],
    axes: [{}, { size: 48, values: (u, vals) => vals.map((v) => (v >= 1000 ? `${+(v / 1000).toFixed(1)}k` : String(v))) }],
  };
  return new uPlot(opts, [[], ...series.map(() => [])], $(id));
}

function drawCharts(s) {
  const h = s.history;
  if (typeof uPlot === "undefined" || !h.t.length) return;
  const lagSeries = s.lanes.map((l) => `partition ${l.partition}`);
  if (!charts.rate) {
    charts.rate = makeChart("chart-rate", ["produced", "stored"]);
    charts.lat = makeChart("chart-lat", ["p50", "p99"]);
  }
  if (!charts.lag || charts.lagN !== lagSeries.length) {
    if (charts.lag) charts.lag.destroy();
    charts.lag = makeChart("chart-lag", lagSeries);
    charts.lagN = lagSeries.length;
  }
  charts.rate.setData([h.t, h.produced, h.stored]);
  charts.lat.setData([h.t, h.p50, h.p99]);
  charts.lag.setData([h.t, ...lagSeries.map((_, i) => h.lag[i] || [])]);
}

window.addEventListener("resize", () => {
  for (const [k, id] of [["rate", "chart-rate"], ["lat", "chart-lat"], ["lag", "chart-lag"]]) {
    if (charts[k]) charts[k].setSize({ width: chartWidth(id), height: 160 });
  }
});

function connect() {
  const es = new EventSource("/events");
  es.addEventListener("state", (e) => {
    $("conn").textContent = "live";
    $("conn").className = "pill live";
    draw(JSON.parse(e.data));
  });
  es.onerror = () => {
    $("conn").textContent = "disconnected: retrying";
    $("conn").className = "pill down";
  };
}

wire();
connect();
