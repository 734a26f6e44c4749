// snabb inspect's page (programs/inspect): views of one run drawn from its JSON API
// (/inspect/api/apps, /inspect/api/traces, /inspect/api/trace/N), routed by the URL's hash so that
// every view is a link (keyboard, back button): #/apps, #/app/NAME, #/traces, #/traces/app/NAME,
// #/trace/N, #/source/CHUNK[/line/N] (source.js). Listings longer than a page are paged; a trace's
// IR, machine-code and bytecode lines are buttons that select what the auditlog links them to (a
// guard's exit and its snapshot; the rest of the cross-reference is xref.js's).
"use strict";

const PAGE_ROWS = 100;    // trace list rows per page
// Listing lines per page (?lines=N in the page's URL sets another: tests/inspect_xref_check.js).
const PAGE_LINES = ((n) => n >= 1 ? Math.floor(n) : 400)(Number(new URLSearchParams(location.search).get("lines")));
const STATE_WORDS = {
  loop: "compiled loop", head: "compiled entry", interp: "interpreted", c: "C/FFI",
  gc: "garbage collection", exit: "leaving compiled code", record: "JIT recording",
  optimise: "JIT optimising", assemble: "JIT assembling", runtime: "snabb runtime",
};

const view = document.getElementById("view");
const cache = {};

// The API's answers, kept for a second (a live run's change: the run directory's apps.json is
// rewritten once a second, and a trace's samples by address grow).
// With two runs (runs.js) each run's API is under api/a/ or api/b/: runPrefix is the one shown;
// whole, skips it (api/compare, api/runs).
let runPrefix = "";
async function api(path, whole) {
  path = (whole ? "" : runPrefix) + path;
  const kept = cache[path];
  if (kept && Date.now() - kept.at < 1000) return kept.body;
  const body = fetch("/inspect/api/" + path).then(async (res) => {
    const doc = await res.json();
    if (!res.ok) { delete cache[path]; throw new Error(doc.error || res.status + " " + res.statusText); }
    return doc;
  });
  cache[path] = {body, at: Date.now()};
  return body;
}

// A DOM element: el("td", {className: "num"}, "text", child...).
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("aria") || k === "role" || k === "colspan") e.setAttribute(k.replace(/^aria/, "aria-").toLowerCase(), v);
    else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
const link = (href, text) => el("a", {href}, text);
const comma = (n) => n === null || n === undefined ? "" : Number(n).toLocaleString("en-US");
const percent = (x) => (100 * x).toFixed(1) + "%";
const enc = encodeURIComponent;

function table(head, rows, numeric) {
  const t = el("table");
  t.append(el("thead", {}, el("tr", {}, ...head.map((h, i) => el("th", {className: numeric[i] ? "num" : ""}, h)))));
  const body = el("tbody");
  for (const r of rows) {
    const cells = r.cells || r;
    const tr = el("tr", r.props || {}, ...cells.map((c, i) => el("td", {className: numeric[i] ? "num" : ""}, c)));
    body.append(tr);
  }
  t.append(body);
  return t;
}

// A bar of the VM states' shares, and its legend.
function stateBar(states, order) {
  const total = order.reduce((n, s) => n + (states[s] || 0), 0);
  const bar = el("div", {className: "bar", role: "img",
    ariaLabel: order.filter((s) => states[s]).map((s) => STATE_WORDS[s] + " " + percent(states[s] / total)).join(", ")});
  if (total > 0) for (const s of order) if (states[s]) bar.append(el("span", {className: "s-" + s, title: STATE_WORDS[s] + " " + percent(states[s] / total), style: ""}));
  [...bar.children].forEach((span) => { const s = span.className.slice(2); span.style.width = (100 * states[s] / total) + "%"; });
  return bar;
}

function legend(order) {
  return el("p", {className: "legend"}, ...order.map((s) => el("span", {}, el("i", {className: "s-" + s}), STATE_WORDS[s])));
}

function pager(page, pages, go, label) {
  if (pages <= 1) return null;
  const p = el("div", {className: "pager", role: "navigation", ariaLabel: label + " pages"});
  const button = (text, to) => el("button", {type: "button", disabled: to < 0 || to >= pages || to === page, onclick: () => go(to)}, text);
  p.append(button("‹ previous", page - 1), ` page ${page + 1} of ${pages} `, button("next ›", page + 1));
  return p;
}

// ---- Profile by app.

async function showApps(selected) {
  const d = await api("apps");
  const order = d.states;
  view.replaceChildren();
  view.append(el("h2", {}, "Profile by app"),
    el("p", {}, `${comma(d.samples)} samples${d.hz ? " at " + d.hz + " Hz of CPU time" : ""}, ${percent(d.in_apps)} of them in apps; ` +
      `${d.traces === null || d.traces === undefined ? "no auditlog" : comma(d.traces) + " traces, " + comma(d.aborts) + " aborts"}`));
  const rows = d.apps.map((a) => ({
    props: {className: a.name === selected ? "selected" : "", dataset: {app: a.name}},
    cells: [link("#/app/" + enc(a.name), a.name), a.class || "", a.cycles_per_packet.toFixed(1), percent(a.share),
      comma(a.packets_in), comma(a.packets_out), comma(a.samples), stateBar(a.states, order),
      a.traces.length ? link("#/trace/" + a.traces[0].trace, "trace " + a.traces[0].trace) : el("span", {className: "muted"}, "none")],
  }));
  view.append(table(["app", "class", "cycles/packet", "share", "packets in", "packets out", "samples", "where its time goes", "hottest trace"],
    rows, [false, false, true, true, true, true, true, false, false]), legend(order));
  if (selected) {
    const a = d.apps.find((x) => x.name === selected);
    if (!a) { view.append(el("p", {className: "warning"}, `no app ${selected} in this run`)); return; }
    view.append(appDetail(a, order));
  }
}

function appDetail(a, order) {
  const s = el("section", {id: "app-detail", ariaLabel: "app " + a.name});
  s.append(el("h2", {}, `app ${a.name}`),
    el("p", {}, `${a.class || ""}; code: `, ...(a.code || []).flatMap((c, i) => [i ? ", " : "",
      link(sourceHref(`${c.source}:${c.first}`), `${c.source}:${c.first}-${c.last}`)])),
    el("p", {}, `${a.cycles_per_packet.toFixed(1)} cycles/packet, ${percent(a.share)} of engine time, ${comma(a.samples)} samples`));
  if (a.warning) s.append(el("p", {className: "warning"}, "WARNING: " + a.warning));
  const states = order.filter((x) => a.states[x]).map((x) => [STATE_WORDS[x], comma(a.states[x]), percent(a.states[x] / a.samples)]);
  s.append(el("h3", {}, "VM states"), states.length ? table(["state", "samples", "share"], states, [false, true, true]) : el("p", {className: "muted"}, "no samples"));
  s.append(el("h3", {}, `hottest traces (${a.traces.length} of ${a.ntraces})`));
  s.append(table(["trace", "samples", "share of the app", "source", "kind"], a.traces.map((t) => ({
    props: {dataset: {trace: t.trace}},
    cells: [link("#/trace/" + t.trace, String(t.trace)), comma(t.samples), percent(t.share), t.span,
      t.parent ? `side trace of ${t.parent}` : (t.linktype || "")],
  })), [false, true, true, false, false]));
  s.append(el("p", {}, link("#/traces/app/" + enc(a.name), `all traces with samples in ${a.name}`)));
  if (a.aborts.length) {
    s.append(el("h3", {}, "aborts in its code"));
    s.append(table(["where", "reason", "times"], a.aborts.map((ab) => [ab.where, ab.reason, comma(ab.count)]), [false, false, true]));
  }
  return s;
}

// ---- Traces.

async function showTraces(app, page) {
  const d = await api("traces");
  // An app's traces: those recorded while it ran and those where its samples fall (its zone).
  let list = d.traces;
  if (app) list = list.filter((x) => x.app === app || (x.by_app && x.by_app[app]));
  list = list.slice().sort((a, b) => b.samples - a.samples || a.number - b.number);
  const pages = Math.max(1, Math.ceil(list.length / PAGE_ROWS));
  page = Math.min(page || 0, pages - 1);
  view.replaceChildren();
  view.append(el("h2", {}, app ? `Traces of app ${app}` : "Traces"),
    el("p", {}, `${comma(list.length)} traces${app ? " recorded in the app or sampled in it" : ""}` +
      `${d.flushes ? `, ${d.flushes} flushes (the latest trace of each number)` : ""}, most samples first; ` +
      `${comma(d.aborts)} aborts in the auditlog`));
  if (!d.auditlog) view.append(el("p", {className: "warning"}, "this run has no auditlog (--no-auditlog): no traces to show"));
  const go = (p) => { location.hash = (app ? "#/traces/app/" + enc(app) : "#/traces") + "/page/" + (p + 1); };
  const rows = list.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS).map((t) => ({
    props: {dataset: {trace: t.number}},
    cells: [link("#/trace/" + t.number, String(t.number)), t.start || "", t.span,
      t.parent ? `${t.parent}/${t.exit === -1 ? "stitch" : t.exit}` : "", t.linktype + (t.link && t.link !== t.number ? " " + t.link : ""),
      t.app || (t.tooling ? el("span", {className: "muted"}, "snabb's own") : ""), comma(t.samples), comma(t.nins), comma(t.mcode)],
  }));
  view.append(pager(page, pages, go, "trace list") || "",
    table(["trace", "starts at", "source lines", "parent/exit", "link", "app", "samples", "IR", "mcode bytes"], rows,
      [true, false, false, false, false, false, true, true, true]),
    pager(page, pages, go, "trace list") || "");
}

// ---- One trace.

// A paged listing; lines are {text, ...}; make(line, index) gives its element.
function listing(id, title, lines, make) {
  const s = el("section", {className: "pane", id: id, ariaLabel: title});
  const box = el("div", {className: "listing"});
  const state = {page: 0};
  const pages = Math.max(1, Math.ceil(lines.length / PAGE_LINES));
  const head = el("h3", {}, `${title} (${comma(lines.length)} lines)`);
  const top = el("div"), bottom = el("div");
  state.show = (page) => {
    state.page = page;
    box.replaceChildren(...lines.slice(page * PAGE_LINES, (page + 1) * PAGE_LINES).map((l, i) => make(l, page * PAGE_LINES + i)));
    top.replaceChildren(pager(page, pages, state.show, title) || "");
    bottom.replaceChildren(pager(page, pages, state.show, title) || "");
    mark();
  };
  state.pageOf = (index) => Math.floor(index / PAGE_LINES);
  s.append(head, top, box, bottom);
  s.state = state;
  return s;
}

let selection = null;   // {kind: "ir" | "mcode" | "bc", index}
let current = null;     // the trace shown and its panes

// What a selection relates to: the exit (= snapshot number) it leaves by.
function exitOf(sel) {
  if (!sel || !current) return null;
  if (sel.kind === "ir") {
    const l = current.t.ir[sel.index];
    if (l.snapshot !== undefined) return l.snapshot;
    return l.guard ? l.snap : null;
  }
  return sel.kind === "mcode" ? current.t.mcode[sel.index].exit : null;
}

function mark() {
  if (!current) return;
  const exit = exitOf(selection);
  const linked = xrefLinked(current.t, selection);
  for (const e of document.querySelectorAll(".listing .line")) {
    const kind = e.dataset.kind, index = Number(e.dataset.index);
    const line = kind === "ir" ? current.t.ir[index] : kind === "mcode" ? current.t.mcode[index] : null;
    const isSel = selection && selection.kind === kind && selection.index === index;
    let related = false;
    if (line && exit !== null && exit !== undefined && !isSel) {
      related = kind === "mcode" ? line.exit === exit : (line.snapshot === exit || (line.guard && line.snap === exit));
    }
    e.classList.toggle("selected", !!isSel);
    e.classList.toggle("related", !!related);
    e.classList.toggle("linked", !isSel && linked[kind] !== undefined && linked[kind].has(index));
  }
}

function select(kind, index) {
  selection = {kind, index};
  const t = current.t;
  const exit = exitOf(selection);
  const box = document.getElementById("xref");
  box.replaceChildren(xrefDescribe(t, selection, reveal));
  const irRel = [], mcRel = [];
  if (exit !== null && exit !== undefined) {
    t.ir.forEach((l, i) => { if (l.snapshot === exit || (l.guard && l.snap === exit)) irRel.push(i); });
    t.mcode.forEach((l, i) => { if (l.exit === exit) mcRel.push(i); });
  }
  const jump = (k, i, text) => el("button", {type: "button", className: "xref-" + k, dataset: {index: i}, onclick: () => reveal(k, i)}, text);
  if (kind === "ir") {
    const l = t.ir[index];
    if (l.snapshot !== undefined) {
      box.append(el("p", {}, `snapshot #${exit}: the state restored when the trace leaves by exit ${exit}; ` +
        `${irRel.length - 1} guard(s) use it, ${mcRel.length} machine-code jump(s) to its exit stub:`));
    } else if (l.guard) {
      box.append(el("p", {}, `IR ${String(l.ins).padStart(4, "0")} is a guard: when it fails the trace leaves by exit ${exit} (snapshot #${exit}); ` +
        `machine code jumping to that exit (${mcRel.length}):`));
    } else if (l.loop) {
      box.append(el("p", {}, `IR ${String(l.ins).padStart(4, "0")} is in the loop part (after LOOP; machine code from ->LOOP).`));
    }
  } else if (kind === "mcode") {
    const l = t.mcode[index];
    if (exit !== null && exit !== undefined) {
      box.append(el("p", {}, `${l.address}: a jump to exit ${exit}, taken when one of these guards fails (snapshot #${exit}):`));
    }
  }
  const refs = el("p", {id: "xref-links"});
  for (const i of irRel) refs.append(jump("ir", i, t.ir[i].snapshot !== undefined ? `SNAP #${t.ir[i].snapshot}` : `IR ${String(t.ir[i].ins).padStart(4, "0")}`), " ");
  for (const i of mcRel) refs.append(jump("mcode", i, t.mcode[i].address), " ");
  box.append(refs);
  box.dataset.exit = exit === null || exit === undefined ? "" : exit;
  box.dataset.ir = irRel.join(",");
  box.dataset.mcode = mcRel.join(",");
  // The linked lines in view: a listing whose page shows none turns to the first.
  const linked = xrefLinked(t, selection);
  for (const [k, pane] of [["bc", current.bc], ["ir", current.ir], ["mcode", current.mc]]) {
    const lines = [...linked[k]].filter((i) => !(k === kind && i === index)).sort((a, b) => a - b);
    if (lines.length && !lines.some((i) => pane.state.pageOf(i) === pane.state.page)) pane.state.show(pane.state.pageOf(lines[0]));
  }
  mark();
}

// Shows line index of a listing (turning its page) and focuses it.
function reveal(kind, index) {
  const pane = kind === "ir" ? current.ir : kind === "bc" ? current.bc : current.mc;
  const page = pane.state.pageOf(index);
  if (page !== pane.state.page) pane.state.show(page);
  const e = pane.querySelector(`.line[data-index="${index}"]`);
  if (e) { e.focus(); e.scrollIntoView({block: "nearest"}); }
}

async function showTrace(n) {
  const t = await api("trace/" + n);
  selection = null;
  view.replaceChildren();
  const kind = t.parent ? `side trace of ${t.parent} at exit ${t.exit === -1 ? "stitch" : t.exit}` : "root trace";
  const by = Object.entries(t.samples.apps).sort((a, b) => b[1] - a[1]).map(([a, c]) => `${a} ${comma(c)}`).join(", ");
  view.append(el("h2", {}, `Trace ${t.number}`),
    el("p", {id: "trace-summary"}, `${kind}; starts at ${t.start.source}:${t.start.line}${t.app ? " in app " + t.app : ""}; ` +
      `link: ${t.linktype}${t.link && t.link !== t.number ? " " + t.link : ""}; ${comma(t.nins)} IR instructions, ${t.nexit} exits, ` +
      `${comma(t.mcode_size)} bytes of machine code at 0x${t.mcode_address}${t.tooling ? "; snabb's own tooling" : ""}`),
    el("p", {}, `samples: `, el("span", {id: "trace-samples"}, comma(t.samples.total)),
      ` (compiled loop ${comma(t.samples.loop)}, entry ${comma(t.samples.head)})${by ? "; by app: " + by : ""}`),
    hotSummary(t),
    el("p", {}, "source lines recorded: ", ...sourceLinks(t.lines)),
    t.parent ? el("p", {}, link("#/trace/" + t.parent, `parent: trace ${t.parent}`)) : "",
    el("p", {}, link("#/tree/" + t.number, "its side-trace tree")));
  // Bytecode with its source line beside it, where the line changes (logs before bclines have none).
  let last = null;
  const bc = listing("bytecode", "Bytecode", t.bytecode, (l, i) => {
    if (i % PAGE_LINES === 0) last = null;
    const at = l.line && l.line !== last ? l.line : "";
    last = l.line || last;
    const props = {className: "line", dataset: {kind: "bc", index: i, line: l.line || ""}};
    // Its source position links to the source view (source.js); the line itself selects it.
    const src = at ? el("a", {className: "src", href: sourceHref(at)}, at.padEnd(24).slice(-24)) : el("span", {className: "src"}, "".padEnd(24));
    if (t.xref) return el("span", {className: "bcrow"}, src, el("button", {...props, type: "button", onclick: () => select("bc", i)}, " ", l.text));
    return el("span", props, src, " ", l.text);
  });
  const ir = listing("ir", "IR", t.ir, (l, i) => {
    const e = el("button", {type: "button", className: "line" + (l.snapshot !== undefined ? " snap" : "") + (l.guard ? " guard" : "") +
      (/ LOOP /.test(l.text) ? " loop" : ""), dataset: {kind: "ir", index: i}, onclick: () => select("ir", i)}, l.text);
    return e;
  });
  // Each machine-code line with its samples (the address table's) and a shade by them (source.js).
  const mc = listing("mcode", "Machine code", t.mcode, (l, i) => {
    const props = {className: "line" + (l.loop ? " loop" : ""), dataset: {kind: "mcode", index: i, address: l.address, samples: l.samples || 0}};
    const count = hotCount(l.samples, t.by_address.max), style = heatStyle(l.samples, t.by_address.max);
    if (t.xref || (l.exit !== undefined && l.exit !== null)) {
      const b = el("button", {...props, type: "button", style, onclick: () => select("mcode", i)}, count, l.text);
      if (!l.loop || !t.xref) return b;
      const f = document.createDocumentFragment();
      f.append(el("span", {className: "loopmark"}, "->LOOP:"), b);
      return f;
    }
    return el("span", {...props, style}, (l.loop ? "->LOOP:\n" : ""), count, l.text);
  });
  current = {t, ir, mc, bc};
  view.append(el("div", {id: "xref", ariaLive: "polite"}, el("p", {className: "muted"}, t.xref ?
    "Select an IR, machine-code or bytecode line (Tab, Enter) to see the lines it is linked to: an instruction's machine code and source line, and the reverse." :
    "Select an IR line (Tab, Enter) or a machine-code jump to an exit (->N) to see what the auditlog links it to.")));
  view.append(el("div", {className: "panes"}, bc, ir, mc));
  bc.state.show(0); ir.state.show(0); mc.state.show(0);
}

// ---- Routing.

// Hooks of views in their own files, each called when its file is loaded (typeof checks):
// runs.js (routeRun: a run's prefix #/a/, #/b/ taken off the hash; extraRoute: #/compare, a
// snabb -a/-p run's profile; afterRoute: links kept in the run shown; initRuns), timeline.js
// (afterApps: the counters over time below the profile). Views that only add routes (tree.js,
// aborts.js) list them in window.inspectRoutes: {pattern (on the hash without its run's prefix),
// nav (its nav link's id), show(match)}.
const ROUTES = window.inspectRoutes || [];
let defaultHash = "#/apps";
async function route() {
  const whole = decodeURIComponent(location.hash || defaultHash);
  let h = whole;
  if (typeof routeRun === "function" && (h = routeRun(h)) === null) return;
  for (const a of document.querySelectorAll("nav a")) a.removeAttribute("aria-current");
  const nav = (id) => document.getElementById(id).setAttribute("aria-current", "page");
  document.getElementById("error").hidden = true;
  let m, own;
  try {
    const extra = typeof extraRoute === "function" ? extraRoute(h) : null;
    if (extra) await extra;
    else if ((own = ROUTES.find((r) => (m = h.match(r.pattern))))) { nav(own.nav); await own.show(m); }
    else if ((m = h.match(/^#\/trace\/(\d+)$/))) { nav("nav-traces"); await showTrace(m[1]); }
    else if ((m = h.match(/^#\/traces(?:\/app\/(.+?))?(?:\/page\/(\d+))?$/))) { nav("nav-traces"); await showTraces(m[1], m[2] ? m[2] - 1 : 0); }
    else if ((m = h.match(/^#\/app\/(.+)$/))) { nav("nav-apps"); await showApps(m[1]); }
    else { nav("nav-apps"); await showApps(null); }
    if (!extra && /^#\/(apps|app\/)/.test(h) && typeof afterApps === "function") await afterApps();
    if (typeof afterRoute === "function") afterRoute(h);
    if (!view.contains(document.activeElement)) view.focus({preventScroll: true}); // (a view may focus a line)
  } catch (e) {
    const p = document.getElementById("error");
    p.textContent = "snabb inspect: " + e.message;
    p.hidden = false;
  }
  document.body.dataset.ready = whole;
}

// (Once every script has run: the views in other files hook in.)
document.addEventListener("DOMContentLoaded", async () => {
  try {
    const d = await api("apps");
    document.getElementById("run").textContent = `${d.program || "?"}, pid ${d.pid}, run directory ${d.dir}`;
    if (typeof initRuns === "function") await initRuns(d);
  } catch (e) {
    document.getElementById("run").textContent = "snabb inspect: " + e.message;
  }
  window.addEventListener("hashchange", route);
  route();
});
