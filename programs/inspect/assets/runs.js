// snabb inspect's runs (programs/inspect/runs.lua, compare.lua), hooked into inspect.js's routing:
// - two runs (snabb inspect A B): #/compare (the first page) shows them side by side from
//   /inspect/api/compare; each run's own views stay reachable under #/a/... and #/b/... (a run
//   selector in the header: "A", "B", "Compare A/B"), their API under api/a/ and api/b/.
// - a run of snabb -a FILE -p FILE's files (no run directory, no apps): its profile page shows
//   its one zone (the whole program): VM states, traces by samples, aborts.
// Improvements and regressions carry a word and an arrow (▼ better, ▲ worse), not colour alone.
"use strict";

let runs = [];          // api/runs: [{id: "a"|"b", dir, files}]
let runShown = null;    // with two runs: "a" or "b" while one's views are shown, null on #/compare
const COMPARE_ROWS = 100; // rows a page in each of the comparison's trace tables

const runOf = (id) => runs.find((r) => r.id === id) || runs[0];
const runName = (r) => r.files ? Object.entries(r.files).map(([k, v]) => `${k} ${v}`).join(", ") : r.dir;

async function initRuns() {
  runs = (await api("runs", true)).runs;
  const head = document.getElementById("run");
  if (runs.length === 2) {
    defaultHash = "#/compare";
    head.textContent = `A: ${runName(runs[0])}; B: ${runName(runs[1])}`;
    const nav = document.querySelector("nav");
    nav.prepend(el("a", {href: "#/compare", id: "nav-compare"}, "Compare A/B"));
    nav.append(el("span", {id: "run-select", role: "group", ariaLabel: "the run whose views are shown"}, " run: ",
      el("a", {href: "#/a/apps", id: "run-a", title: runName(runs[0])}, "A"), " ",
      el("a", {href: "#/b/apps", id: "run-b", title: runName(runs[1])}, "B")));
  } else if (runs[0].files) {
    head.textContent = `snabb -a/-p files: ${runName(runs[0])} (no run directory: one profile zone, no apps)`;
    document.getElementById("nav-apps").textContent = "Profile";
  }
}

// The hash without its run (#/a/traces -> #/traces), the run's API prefix set; null when it sent
// the page elsewhere (a view's link without a run: kept in the run shown).
function routeRun(h) {
  if (runs.length < 2) { runPrefix = ""; return h; }
  const m = h.match(/^#\/([ab])(\/.*)?$/);
  if (m) { runShown = m[1]; runPrefix = m[1] + "/"; return "#" + (m[2] || "/apps"); }
  if (h.startsWith("#/compare")) { runShown = null; runPrefix = ""; return h; }
  location.replace("#/" + (runShown || "a") + h.slice(1));
  return null;
}

function extraRoute(h) {
  if (runs.length === 2 && h === "#/compare") return showCompare();
  const r = runOf(runShown || "a");
  if (r && r.files && /^#\/(apps|app\/.*)$/.test(h)) {
    document.getElementById("nav-apps").setAttribute("aria-current", "page");
    return showZone();
  }
  return null;
}

// Links keep to the run shown; the selector marks it.
function afterRoute(h) {
  if (runs.length < 2) return;
  const run = "#/" + (runShown || "a");
  for (const a of document.querySelectorAll("main a[href^='#/']")) {
    const href = a.getAttribute("href");
    if (!/^#\/(a|b|compare)(\/|$)/.test(href)) a.setAttribute("href", run + href.slice(1));
  }
  document.getElementById("nav-apps").setAttribute("href", run + "/apps");
  document.getElementById("nav-traces").setAttribute("href", run + "/traces");
  for (const [id, on] of [["nav-compare", h.startsWith("#/compare")], ["run-a", runShown === "a"], ["run-b", runShown === "b"]]) {
    document.getElementById(id).toggleAttribute("aria-current", false);
    if (on) document.getElementById(id).setAttribute("aria-current", "page");
  }
  document.getElementById("run").textContent = runShown
    ? `run ${runShown.toUpperCase()}: ${runName(runOf(runShown))} (compared with ${runShown === "a" ? "B" : "A"}: ${runName(runOf(runShown === "a" ? "b" : "a"))})`
    : `A: ${runName(runs[0])}; B: ${runName(runs[1])}`;
}

// ---- A snabb -a/-p run: its one zone.

async function showZone() {
  const d = await api("apps");
  const z = d.zone;
  view.replaceChildren(el("h2", {}, "Profile of the whole program"));
  view.append(el("p", {}, `files: ${Object.entries(d.files).map(([k, v]) => `${k} ${v}`).join(", ")}; ` +
    `${d.traces === null || d.traces === undefined ? "no auditlog (snabb -a FILE): traces by number only" : comma(d.traces) + " traces, " + comma(d.aborts) + " aborts"}`));
  if (!z) { view.append(el("p", {className: "warning"}, "no vmprofile (snabb -p FILE): no samples; the traces are listed under Traces")); return; }
  view.append(el("p", {id: "zone-summary"}, `zone ${z.name}: ${comma(z.samples)} samples at ${z.hz} Hz of CPU time ` +
    "(snabb -p profiles the whole program in one zone: no apps, no cycles per packet)"));
  if (z.warning) view.append(el("p", {className: "warning"}, "WARNING: " + z.warning));
  const order = d.states;
  view.append(stateBar(z.states, order), legend(order));
  const states = order.filter((s) => z.states[s]).map((s) => [STATE_WORDS[s], comma(z.states[s]), percent(z.states[s] / z.samples)]);
  view.append(el("h3", {}, "VM states"), table(["state", "samples", "share"], states, [false, true, true]));
  view.append(el("h3", {}, `traces with samples (${comma(z.traces.length)})`));
  const list = el("div");
  const page = (p) => {
    const pages = Math.max(1, Math.ceil(z.traces.length / COMPARE_ROWS));
    list.replaceChildren(pager(p, pages, page, "traces") || "", table(["trace", "samples", "share", "source", "kind"],
      z.traces.slice(p * COMPARE_ROWS, (p + 1) * COMPARE_ROWS).map((t) => ({props: {dataset: {trace: t.trace}},
        cells: [d.traces === null || d.traces === undefined ? String(t.trace) : link("#/trace/" + t.trace, String(t.trace)), comma(t.samples), percent(t.share), t.span,
          t.parent ? `side trace of ${t.parent}` : (t.linktype || "")]})), [false, true, true, false, false]));
  };
  page(0);
  view.append(list);
  if (z.aborts.length) {
    view.append(el("h3", {}, "aborts"), table(["where", "reason", "times"], z.aborts.map((ab) => [ab.where, ab.reason, comma(ab.count)]), [false, false, true]));
  }
}

// ---- Two runs compared.

const signed = (x, digits) => (x > 0 ? "+" : x < 0 ? "−" : "±") + Math.abs(x).toFixed(digits);
const points = (x) => signed(100 * x, 1) + " pt";
const ratioText = (r) => r === null || r === undefined ? "" : r.toFixed(2) + "×";
// A change in words and arrow (and a class for colour): less is better for cycles per packet.
function verdict(v) {
  const words = {better: "▼ better", worse: "▲ worse", same: "= same", "only in A": "only in A", "only in B": "only in B"};
  return el("span", {className: "verdict v-" + v.replace(/ /g, "-")}, words[v] || v);
}
function moreLess(diff) {
  if (Math.abs(diff) < 0.0005) return el("span", {className: "verdict v-same"}, "= same");
  return el("span", {className: "verdict " + (diff > 0 ? "v-more" : "v-less")}, diff > 0 ? "▲ more" : "▼ less");
}

function traceKind(x) {
  if (!x || !x.parent) return "root";
  return `side of ${x.parent} exit ${x.exit === -1 ? "stitch" : x.exit}`;
}

// A table of traces, paged here (its pager turns only it).
function tracePages(id, title, rows, head, numeric, cells) {
  const s = el("section", {id, ariaLabel: title});
  const box = el("div");
  const pages = Math.max(1, Math.ceil(rows.length / COMPARE_ROWS));
  const show = (p) => {
    box.replaceChildren(pager(p, pages, show, title) || "",
      table(head, rows.slice(p * COMPARE_ROWS, (p + 1) * COMPARE_ROWS).map((r) => ({
        props: {dataset: {id: r.id, traceA: r.a ? r.a.number : "", traceB: r.b ? r.b.number : ""}}, cells: cells(r)})), numeric));
  };
  s.append(el("h3", {}, `${title} (${comma(rows.length)})`), rows.length ? box : el("p", {className: "muted"}, "none"));
  show(0);
  return s;
}

async function showCompare() {
  const d = await api("compare", true);
  view.replaceChildren(el("h2", {}, "Run B against run A"));
  const about = (x, id) => `${id}: ${x.files ? runName({files: x.files}) : x.dir} (${x.program || "?"}${x.pid ? ", pid " + x.pid : ""}), ` +
    `${comma(x.samples)} samples${x.hz ? " at " + x.hz + " Hz" : ""}, ${comma(x.apps)} apps, ` +
    `${x.auditlog ? comma(x.traces) + " traces" : "no auditlog"}`;
  view.append(el("ul", {id: "compare-runs"}, el("li", {}, link("#/a/apps", "A"), " ", about(d.a, "A").slice(3)),
    el("li", {}, link("#/b/apps", "B"), " ", about(d.b, "B").slice(3))));
  view.append(el("p", {className: "muted"}, "Differences are B − A, ratios B / A; most impact first. " +
    "▼ better / ▲ worse: fewer / more cycles per packet (within 2%: = same). Traces are matched by what they are " +
    "(where they start, their link, a side trace's parent and exit), not by number."));

  // Apps.
  view.append(el("h3", {}, "Apps: cycles per packet"));
  if (!d.apps.length) view.append(el("p", {className: "muted"}, "no apps in either run (snabb -a/-p files profile the whole program)"));
  else {
    const cpp = (x) => x ? x.cycles_per_packet.toFixed(1) : "—";
    view.append(el("div", {id: "compare-apps"}, table(
      ["app", "A cycles/packet", "B cycles/packet", "difference", "ratio", "change", "A share", "B share", "A samples", "B samples"],
      d.apps.map((r) => ({props: {dataset: {app: r.name}}, cells: [r.name, cpp(r.a), cpp(r.b), signed(r.diff, 1), ratioText(r.ratio),
        verdict(r.verdict), r.a ? percent(r.a.share) : "—", r.b ? percent(r.b.share) : "—",
        r.a ? comma(r.a.samples) : "—", r.b ? comma(r.b.samples) : "—"]})),
      [false, true, true, true, true, false, true, true, true, true])));
  }

  // VM states.
  view.append(el("h3", {}, "Where the time went (share of all samples)"));
  view.append(el("div", {id: "compare-states"}, table(["state", "A", "B", "difference"],
    d.states.filter((s) => s.a || s.b).map((s) => ({props: {dataset: {state: s.state}},
      cells: [STATE_WORDS[s.state], percent(s.share_a), percent(s.share_b), points(s.share_diff)]})), [false, true, true, true])));

  // Traces.
  const both = d.traces.filter((r) => !r.only), onlyA = d.traces.filter((r) => r.only === "a"), onlyB = d.traces.filter((r) => r.only === "b");
  const bySamples = (side) => (x, y) => y[side].samples - x[side].samples || x[side].number - y[side].number;
  onlyA.sort(bySamples("a"));
  onlyB.sort(bySamples("b"));
  const num = (x, side) => link(`#/${side}/trace/${x.number}`, String(x.number));
  view.append(el("h2", {}, "Traces"),
    el("p", {}, `${comma(both.length)} in both runs, ${comma(onlyA.length)} only in A, ${comma(onlyB.length)} only in B; ` +
      "share: of all the run's samples"));
  view.append(tracePages("compare-traces", "In both runs, most change of share first", both,
    ["A", "B", "starts at", "kind (in A)", "link", "A samples", "B samples", "difference", "A share", "B share", "share difference", "ratio", "change"],
    [false, false, false, false, false, true, true, true, true, true, true, true, false],
    (r) => [num(r.a, "a"), num(r.b, "b"), r.start || "", traceKind(r.a), r.linktype || "", comma(r.a.samples), comma(r.b.samples),
      signed(r.diff, 0), percent(r.a.share), percent(r.b.share), points(r.share_diff), ratioText(r.ratio), moreLess(r.share_diff)]));
  const alone = (side) => (r) => [num(r[side], side), r.start || "", traceKind(r[side]), r.linktype || "", r[side].span || "",
    comma(r[side].samples), percent(r[side].share)];
  const aloneHead = ["trace", "starts at", "kind", "link", "source lines", "samples", "share"];
  const aloneNum = [false, false, false, false, false, true, true];
  view.append(tracePages("compare-only-a", "Only in A", onlyA, aloneHead, aloneNum, alone("a")));
  view.append(tracePages("compare-only-b", "Only in B", onlyB, aloneHead, aloneNum, alone("b")));
}
