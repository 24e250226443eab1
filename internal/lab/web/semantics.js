// The delivery-semantics panel: the two teaching groups beside the orders
// group, one button that kills a member of each at once, mid-batch, and
// what each group's table holds afterwards (lab/semantics.go). Loaded after
// app.js, whose $, el and post it uses; app.js's draw calls drawSemantics
// on every snapshot, which comes once both have run.
"use strict";

const semNames = {
  "at-most-once": "At most once",
  "at-least-once": "At least once",
  "exactly-once": "Exactly-once effect",
};
const semCycles = {
  "at-most-once": "commit, then write",
  "at-least-once": "write, then commit",
  "exactly-once": "rows + offsets in one transaction, then commit",
};

function wireSemantics() {
  $("sem-start").onclick = () => post("/api/semantics/start");
  $("sem-kill").onclick = () => post("/api/semantics/kill");
}

// semSpread is the time between the first SIGKILL and the last.
function semSpread(us) {
  return us < 1000 ? `${Math.round(us)} µs` : `${(us / 1000).toFixed(1)} ms`;
}

function semTime(t) {
  return new Date(t).toLocaleTimeString([], { hour12: false });
}

// semStatus says, in a sentence, where the panel stands.
function semStatus(v) {
  const r = v.round;
  switch (v.status) {
    case "off": return "The teaching groups are not running.";
    case "running":
      return r && r.error ? `The last round failed: ${r.error}` : "The three groups are reading the topic. Kill one member of each when you are ready (the producer must be running).";
    case "holding": return "Each of the three members was restarted armed: it stops itself at its crash point, mid-batch, at its next batch; the three are then killed at the same instant.";
    case "settling": return `Killed (SIGKILL) at ${semTime(r.killed_at)}, the three within ${semSpread(r.spread_us)}, and restarted: counting until every group has read past the kill…`;
    case "final": return `Final: the three killed at ${semTime(r.killed_at)} within ${semSpread(r.spread_us)}, restarted, and every group has read past the kill. Counted from PostgreSQL: the ${r.groups.length ? r.groups[0].produced : 0} orders sent from ${semTime(r.since)} until the kill.`;
    case "failed": return `The round failed: ${r && r.error}`;
  }
  return v.status;
}

function drawSemantics(s) {
  const v = s.semantics;
  const box = $("semantics");
  box.dataset.status = v.status;
  const busy = v.status === "holding" || v.status === "settling";
  const ended = v.members.some((m) => m.ended);
  $("sem-start").disabled = !(v.status === "off" || (ended && !busy));
  $("sem-start").textContent = v.status === "off" || !ended ? "Start the teaching groups" : "Start again the member that ended";
  $("sem-kill").disabled = v.status === "off" || busy;
  $("sem-state").textContent = semStatus(v);
  $("sem-state").className = v.status === "failed" ? "bad-text" : "";
  const counts = {};
  for (const c of (v.round && v.round.groups) || []) counts[c.semantics] = c;
  const final = !!(v.round && v.round.final);
  const rows = v.members.map((m) => {
    const c = counts[m.semantics];
    const num = (n, badIfAbove) => el("td", {
      className: "num " + (c ? (n > 0 && badIfAbove ? "bad-text" : n === 0 && badIfAbove ? "ok-text" : "") : "muted"),
      textContent: c ? String(n) : "–",
    });
    const tr = el("tr", {},
      el("th", { scope: "row" },
        el("strong", { textContent: semNames[m.semantics] || m.semantics }),
        el("span", { className: "muted sem-sub", textContent: `${m.group} · ${semCycles[m.semantics] || ""}` })),
      el("td", {},
        el("span", { textContent: m.id ? `${m.id}${m.pid ? " (pid " + m.pid + ")" : ""}${m.ended ? ", ended" : ""}` : "a consumer that owns partitions, chosen at the kill" }),
        el("code", { className: "sem-sub", textContent: m.crash_point })),
      num(c ? c.lost : 0, true),
      num(c ? c.twice : 0, true),
      num(c ? c.once : 0, false),
      el("td", { className: "sem-why", textContent: c ? (final ? c.why : "counting…") : "" }));
    tr.dataset.semantics = m.semantics;
    if (c) Object.assign(tr.dataset, { lost: c.lost, twice: c.twice, once: c.once, produced: c.produced });
    return tr;
  });
  $("sem-table").querySelector("tbody").replaceChildren(...rows);
  $("sem-table").dataset.final = String(final);
}

wireSemantics();
