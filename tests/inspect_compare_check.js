// node tests/inspect_compare_check.js MODE ...: drives `snabb inspect`'s page in headless Chromium
// (Debian's, with playwright-core, as tests/inspect_check.js) and checks what it shows against the
// runs' own files read here: apps.json (the engine's counters), the vmprofile zone files (parsed by
// tests/inspect_page.js from their layout in observe/vmprofile.h) and the auditlog as `snabb auditlog --json`
// lists it; and, live, the counters the control server reads from shared memory (GET /counters).
//   compare URL DIR_A DIR_B SNABB   snabb inspect A B: #/compare (the first page): every app's
//       cycles per packet, difference, ratio and change; the VM states; every trace matched by
//       identity (computed here from the auditlogs: start, link type, parent's identity and exit)
//       with its samples and shares, and those only in A or only in B; then, with the keyboard, a
//       trace of B, B's trace list, A's profile (each run's own views).
//   files URL AUDITLOG VMPROFILE SNABB   snabb inspect LOG VMP (snabb -a -p's files): the profile
//       of the one zone and the trace list.
//   live URL PID   snabb inspect PID: the counters over time, a point a second, the last one
//       between two readings of the counters a second apart.
"use strict";
const {STATES, readZone, launch} = require("./inspect_page.js");
const {execFileSync} = require("child_process");
const fs = require("fs");
const http = require("http");

const fail = (message) => { console.error("FAIL: " + message); process.exit(1); };
const [mode, url, ...rest] = process.argv.slice(2);
if (!url) fail("usage: node inspect_compare_check.js compare|files|live URL ...");

const WORDS = {loop: "compiled loop", head: "compiled entry", interp: "interpreted", c: "C/FFI", gc: "garbage collection",
  exit: "leaving compiled code", record: "JIT recording", optimise: "JIT optimising", assemble: "JIT assembling", runtime: "snabb runtime"};
const compiled = (row) => (row && (row.loop || 0) + (row.head || 0)) || 0;
const comma = (n) => Number(n).toLocaleString("en-US");
const percent = (x) => (100 * x).toFixed(1) + "%";
const signed = (x, digits) => (x > 0 ? "+" : x < 0 ? "−" : "±") + Math.abs(x).toFixed(digits);
const points = (x) => signed(100 * x, 1) + " pt";

// A run as its files say: apps (apps.json), zones, samples by trace number, the auditlog's traces.
function readRun(dir, snabb, log, vmprofile) {
  const run = {apps: [], zones: {}, samples: 0, byTrace: {}, states: {}};
  if (dir) {
    run.apps = JSON.parse(fs.readFileSync(dir + "/apps.json", "utf8")).apps;
    for (const f of fs.readdirSync(dir + "/vmprofile").filter((f) => f.endsWith(".vmprofile"))) run.zones[f.replace(/\.vmprofile$/, "")] = readZone(dir + "/vmprofile/" + f);
    log = dir + "/audit.log";
  } else {
    run.zones.file = readZone(vmprofile);
  }
  for (const z of Object.values(run.zones)) {
    run.samples += z.samples;
    for (const s of STATES) run.states[s] = (run.states[s] || 0) + z.total[s];
    for (const [t, row] of Object.entries(z.traces)) if (Number(t) > 0) run.byTrace[t] = (run.byTrace[t] || 0) + compiled(row);
  }
  const doc = JSON.parse(execFileSync(snabb, ["auditlog", log, "--all", "--json"], {encoding: "utf8", maxBuffer: 1 << 28}));
  run.traces = {}; // the latest of each number, as the vmprofile counts by number
  for (const t of doc.traces) run.traces[t.number] = t;
  run.ids = identities(run.traces);
  return run;
}

// Each trace's identity, worked out here as snabb inspect's comparison defines it (programs/
// inspect/compare.lua): where it starts (the path with "DIR/../" folded), its link type, and for
// a side trace its parent's identity and exit; the n-th trace of an identity (by number) gets " (#n)".
function normalise(source) {
  const parts = [];
  for (const p of source.replace(/^@/, "").split("/").filter((x) => x !== "")) {
    if (p === ".." && parts.length && parts[parts.length - 1] !== "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return (source.replace(/^@/, "").startsWith("/") ? "/" : "") + parts.join("/");
}
function identities(traces) {
  const base = (t, depth) => {
    const start = t.start && t.start.source ? `${normalise(t.start.source)}:${t.start.line}` : "?";
    let key = `${start} ${t.linktype}`;
    if (t.parent > 0) {
      const p = traces[t.parent];
      const pid = p && p !== t && depth < 64 ? base(p, depth + 1) : "trace ?";
      key += ` from [${pid}] exit ${t.exit === -1 ? "stitch" : t.exit}`;
    }
    return key;
  };
  const seen = {}, ids = {};
  for (const n of Object.keys(traces).map(Number).sort((a, b) => a - b)) {
    const key = base(traces[n], 0);
    seen[key] = (seen[key] || 0) + 1;
    ids[n] = seen[key] > 1 ? `${key} (#${seen[key]})` : key;
  }
  return ids;
}

function get(path) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    http.get({host: u.hostname, port: u.port, path}, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { body += c; });
      res.on("end", () => resolve({status: res.statusCode, body}));
    }).on("error", reject);
  });
}

async function browse(fn) {
  const {browser, page: page, errors} = await launch();
  try {
    const origin = new URL(url).origin;
    page.on("request", (r) => { if (!r.url().startsWith(origin + "/inspect")) errors.push("fetches " + r.url()); });
    page.ready = (hash) => page.waitForFunction((h) => document.body.dataset.ready === h, hash);
    await fn(page);
    if (errors.length) fail("page errors: " + errors.join("; "));
  } finally {
    await browser.close();
  }
}

// The rows of a table section, every page of it (its pager's "next ›" clicked).
async function allRows(page, section) {
  const rows = [];
  for (;;) {
    rows.push(...await page.$$eval(`#${section} tbody tr`, (trs) => trs.map((tr) => ({
      a: tr.dataset.traceA, b: tr.dataset.traceB, id: tr.dataset.id, cells: [...tr.children].map((td) => td.textContent)}))));
    const next = await page.$(`#${section} .pager button:last-child:not([disabled])`);
    if (!next) return rows;
    await next.click();
  }
}

async function compare([dirA, dirB, snabb]) {
  const A = readRun(dirA, snabb), B = readRun(dirB, snabb);
  await browse(async (page) => {
    const started = Date.now();
    await page.goto(url);
    await page.ready("#/compare");
    console.log(`inspect_compare_check: the comparison loaded in ${Date.now() - started} ms`);

    // Apps: each run's cycles per packet as its engine counted them (apps.json).
    const rows = await page.$$eval("#compare-apps tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    const names = [...new Set([...A.apps, ...B.apps].map((a) => a.name))];
    if (rows.length !== names.length) fail(`${rows.length} app rows, the runs have ${names.length} apps (${names})`);
    const share = (run, a) => a.cycles / run.apps.reduce((n, x) => n + x.cycles, 0);
    const samples = (run, name) => run.zones[name] ? run.zones[name].samples : 0;
    let last = Infinity, worse = 0, only = 0;
    for (const row of rows) {
      const a = A.apps.find((x) => x.name === row[0]), b = B.apps.find((x) => x.name === row[0]);
      if (!a && !b) fail(`app row ${row[0]} is in neither run`);
      const ca = a && a.cycles_per_packet, cb = b && b.cycles_per_packet;
      const diff = (cb || 0) - (ca || 0);
      const r = a && b && ca > 0 ? cb / ca : null;
      const change = !a ? "only in B" : !b ? "only in A" : r === null ? (cb > 0 ? "▲ worse" : "= same")
        : r < 0.98 ? "▼ better" : r > 1.02 ? "▲ worse" : "= same";
      const want = [row[0], a ? ca.toFixed(1) : "—", b ? cb.toFixed(1) : "—", signed(diff, 1), r === null ? "" : r.toFixed(2) + "×", change,
        a ? percent(share(A, a)) : "—", b ? percent(share(B, b)) : "—", a ? comma(samples(A, a.name)) : "—", b ? comma(samples(B, b.name)) : "—"];
      if (JSON.stringify(row) !== JSON.stringify(want)) fail(`app ${row[0]}: shown ${JSON.stringify(row)}, the runs' files give ${JSON.stringify(want)}`);
      if (Math.abs(diff) > last + 1e-9) fail(`app ${row[0]} (difference ${diff}) after one of ${last}: not sorted by impact`);
      last = Math.abs(diff);
      if (change === "▲ worse") worse++;
      if (change.startsWith("only")) only++;
    }
    if (!only) fail("the runs differ by an app, but no app is shown as only in one run");

    // The VM states: each run's share of its samples in each, over all its zones.
    const states = await page.$$eval("#compare-states tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    const totalA = STATES.reduce((n, s) => n + A.states[s], 0), totalB = STATES.reduce((n, s) => n + B.states[s], 0);
    const wantStates = STATES.filter((s) => A.states[s] || B.states[s]).map((s) => [WORDS[s], percent(A.states[s] / totalA),
      percent(B.states[s] / totalB), points(B.states[s] / totalB - A.states[s] / totalA)]);
    if (JSON.stringify(states) !== JSON.stringify(wantStates)) fail(`VM states ${JSON.stringify(states)}, the zones give ${JSON.stringify(wantStates)}`);

    // Traces: matched by identity, never by number; samples and shares from the zones.
    const idsA = {}, idsB = {};
    for (const [n, id] of Object.entries(A.ids)) idsA[id] = Number(n);
    for (const [n, id] of Object.entries(B.ids)) idsB[id] = Number(n);
    const both = Object.keys(idsA).filter((id) => id in idsB);
    const onlyA = Object.keys(idsA).filter((id) => !(id in idsB)), onlyB = Object.keys(idsB).filter((id) => !(id in idsA));
    const matched = await allRows(page, "compare-traces");
    if (matched.length !== both.length) fail(`${matched.length} traces shown in both runs, the auditlogs have ${both.length} identities in both`);
    let lastShift = Infinity, renumbered = 0, withSamples = 0;
    for (const row of matched) {
      const na = Number(row.a), nb = Number(row.b);
      if (A.ids[na] !== B.ids[nb] || row.id !== A.ids[na]) fail(`trace ${na} of A shown beside trace ${nb} of B as '${row.id}': the auditlogs make them '${A.ids[na]}' and '${B.ids[nb]}'`);
      const sa = A.byTrace[na] || 0, sb = B.byTrace[nb] || 0;
      const ha = sa / A.samples, hb = sb / B.samples;
      const ta = A.traces[na];
      const want = [String(na), String(nb), `${ta.start.source}:${ta.start.line}`,
        ta.parent > 0 ? `side of ${ta.parent} exit ${ta.exit === -1 ? "stitch" : ta.exit}` : "root", ta.linktype,
        comma(sa), comma(sb), signed(sb - sa, 0), percent(ha), percent(hb), points(hb - ha), ha > 0 ? (hb / ha).toFixed(2) + "×" : "",
        Math.abs(hb - ha) < 0.0005 ? "= same" : hb > ha ? "▲ more" : "▼ less"];
      want.forEach((w, i) => { if (w !== null && row.cells[i] !== w) fail(`traces ${na}/${nb} column ${i}: '${row.cells[i]}', the files give '${w}'`); });
      if (Math.abs(hb - ha) > lastShift + 1e-12) fail(`traces ${na}/${nb} (share change ${hb - ha}) after one of ${lastShift}: not sorted by impact`);
      lastShift = Math.abs(hb - ha);
      if (na !== nb) renumbered++;
      if (sa || sb) withSamples++;
    }
    if (!renumbered) fail("every matched trace has the same number in both runs: the test shows no matching by identity");
    if (!withSamples) fail("no matched trace has samples");
    for (const [section, want, run, side] of [["compare-only-a", onlyA, A, "a"], ["compare-only-b", onlyB, B, "b"]]) {
      const shown = await allRows(page, section);
      const got = shown.map((r) => r.id).sort(), expect = want.slice().sort();
      if (JSON.stringify(got) !== JSON.stringify(expect)) fail(`${section}: ${got.length} traces shown, the auditlogs give ${expect.length}: ${JSON.stringify(got.filter((x) => !expect.includes(x)).concat(expect.filter((x) => !got.includes(x))).slice(0, 4))}`);
      for (const r of shown) {
        const n = Number(r[side]);
        if (r.cells[5] !== comma(run.byTrace[n] || 0) || r.cells[6] !== percent((run.byTrace[n] || 0) / run.samples)) {
          fail(`${section} trace ${n}: ${r.cells[5]} samples (${r.cells[6]}), the zones have ${run.byTrace[n] || 0} of ${run.samples}`);
        }
        if (r.id !== run.ids[n]) fail(`${section} trace ${n} shown as '${r.id}', the auditlog makes it '${run.ids[n]}'`);
      }
    }
    if (!onlyB.length) fail("run B's extra app left no trace only in B");

    // Each run's own views, with the keyboard: B's trace from the comparison, B's trace list, A's profile.
    const first = matched.find((r) => Number(r.b) && (B.byTrace[r.b] || 0) > 0) || matched[0];
    await page.focus(`#compare-traces tr[data-trace-b="${first.b}"] td:nth-child(2) a`);
    await page.keyboard.press("Enter");
    await page.ready(`#/b/trace/${first.b}`);
    const shown = await page.textContent("#trace-samples");
    if (shown !== comma(B.byTrace[first.b] || 0)) fail(`run B's trace ${first.b}: ${shown} samples, B's zones have ${B.byTrace[first.b] || 0}`);
    if (await page.getAttribute("#run-b", "aria-current") !== "page") fail("run B's trace shown, the run selector does not mark B");
    await page.focus("#nav-traces");
    await page.keyboard.press("Enter");
    await page.ready("#/b/traces");
    const count = await page.textContent("main h2 + p");
    if (!count.startsWith(`${comma(Object.keys(B.traces).length)} traces`)) fail(`run B's trace list says '${count}', its auditlog has ${Object.keys(B.traces).length}`);
    await page.focus("#run-a");
    await page.keyboard.press("Enter");
    await page.ready("#/a/apps");
    const appsA = await page.$$eval("tbody tr[data-app]", (trs) => trs.map((tr) => [tr.dataset.app, tr.children[2].textContent]));
    const wantA = A.apps.map((a) => [a.name, a.cycles_per_packet.toFixed(1)]).sort();
    if (JSON.stringify(appsA.slice().sort()) !== JSON.stringify(wantA)) fail(`run A's profile shows ${JSON.stringify(appsA)}, its apps.json ${JSON.stringify(wantA)}`);
    const none = await page.textContent("#history-none");
    if (!/No live history: .*has ended/.test(none)) fail(`a finished run's history says '${none}'`);
    await page.click("#nav-compare");
    await page.ready("#/compare");

    // The API: the comparison and each run's; nothing else.
    for (const [path, status] of [["/inspect/api/compare", 200], ["/inspect/api/a/apps", 200], ["/inspect/api/b/traces", 200],
      ["/inspect/api/c/apps", 404], ["/inspect/api/compare/x", 404], ["/inspect/chart.js", 200]]) {
      const res = await get(path);
      if (res.status !== status) fail(`GET ${path}: ${res.status}, want ${status}`);
    }
    console.log(`inspect_compare_check: OK (compare: ${rows.length} apps, ${worse} worse, ${only} in one run only; ` +
      `${both.length} traces in both (${renumbered} numbered differently), ${onlyA.length} only in A, ${onlyB.length} only in B)`);
  });
}

async function files([log, vmprofile, snabb]) {
  const run = readRun(null, snabb, log, vmprofile);
  const z = run.zones.file;
  await browse(async (page) => {
    await page.goto(url);
    await page.ready("#/apps");
    const summary = await page.textContent("#zone-summary");
    if (!summary.includes(`${comma(z.samples)} samples at ${z.hz} Hz`)) fail(`zone summary '${summary}', the file has ${z.samples} samples at ${z.hz} Hz`);
    const states = await page.$$eval("main > table:first-of-type tbody tr", (trs) => trs.map((tr) => [...tr.children].slice(0, 2).map((td) => td.textContent)));
    const want = STATES.filter((s) => z.total[s]).map((s) => [WORDS[s], comma(z.total[s])]);
    if (JSON.stringify(states) !== JSON.stringify(want)) fail(`the profile's VM states ${JSON.stringify(states)}, the file's ${JSON.stringify(want)}`);
    const traces = await page.$$eval("main tr[data-trace]", (trs) => trs.map((tr) => [Number(tr.dataset.trace), tr.children[1].textContent]));
    const hot = Object.entries(run.byTrace).filter(([, n]) => n > 0);
    if (traces.length !== Math.min(hot.length, 100)) fail(`${traces.length} traces with samples shown, the file has ${hot.length}`);
    for (const [t, n] of traces) if (n !== comma(run.byTrace[t])) fail(`trace ${t}: ${n} samples, the file has ${run.byTrace[t]}`);
    await page.click("#nav-traces");
    await page.ready("#/traces");
    const count = await page.textContent("main h2 + p");
    if (!count.startsWith(`${comma(Object.keys(run.traces).length)} traces`)) fail(`trace list '${count}', the auditlog has ${Object.keys(run.traces).length}`);
    console.log(`inspect_compare_check: OK (files: ${comma(z.samples)} samples, ${traces.length} hot traces, ${Object.keys(run.traces).length} traces)`);
  });
}

async function live([pid]) {
  const counters = async () => JSON.parse((await get("/counters")).body);
  await browse(async (page) => {
    await page.goto(url + "#/apps");
    await page.ready("#/apps");
    // Opened late: what the inspector saw since it started is there at once.
    await page.waitForFunction(() => Number((document.getElementById("history") || {dataset: {}}).dataset.points) >= 3, null, {timeout: 15000});
    const chart = () => page.evaluate(() => {
      const c = window.Chart.getChart(document.getElementById("history-cpp"));
      const s = window.Chart.getChart(document.getElementById("history-share"));
      const sec = document.getElementById("history");
      const rows = [...document.querySelectorAll("#history-latest tr[data-app]")].map((tr) => [tr.dataset.app, [...tr.children].map((td) => td.textContent)]);
      return {points: Number(sec.dataset.points), last: Number(sec.dataset.last), rows: Object.fromEntries(rows),
        cpp: Object.fromEntries(c.data.datasets.map((d) => [d.label, d.data])), share: Object.fromEntries(s.data.datasets.map((d) => [d.label, d.data]))};
    });
    const first = await chart();
    const apps = Object.keys(first.cpp).sort();
    if (JSON.stringify(apps) !== JSON.stringify(["sink_a", "sink_b", "source", "tee"])) fail(`the chart's apps: ${apps}`);
    // The counters now, then the first point the inspector takes after, then the counters again.
    const before = await counters(), t0 = Date.now() / 1000;
    if (before.pid !== Number(pid)) fail(`GET /counters names pid ${before.pid}, want ${pid}`);
    await page.waitForFunction((t) => Number(document.getElementById("history").dataset.last) > t, t0 + 0.15, {timeout: 10000});
    await new Promise((r) => setTimeout(r, 250)); // (the server's /counters may be 100 ms old)
    const after = await counters();
    const now = await chart();
    const history = JSON.parse((await get("/inspect/api/history")).body);
    const p = history.points.find((x) => Math.abs(x.t - now.last) < 1e-6);
    if (!p) fail(`the chart's last point (t ${now.last}) is not in /inspect/api/history`);
    const prev = history.points[history.points.indexOf(p) - 1];
    for (const name of apps) {
      const a = p.apps[name], b = before.apps.find((x) => x.name === name), c = after.apps.find((x) => x.name === name);
      for (const k of ["packets_in", "packets_out", "cycles"]) {
        if (!(a[k] >= b[k] && a[k] <= c[k])) fail(`app ${name}'s ${k} at the last point, ${a[k]}, is not between the counters read before (${b[k]}) and after (${c[k]})`);
      }
      if (c.packets_in + c.packets_out - b.packets_in - b.packets_out <= 0) fail(`app ${name} moved no packet in a second`);
      // Its rates from the counters at this point and the one before, as snabb top works them out.
      const o = prev.apps[name];
      const cpp = (a.cycles - o.cycles - (a.idle_cycles - o.idle_cycles)) / Math.max(a.packets_in - o.packets_in, a.packets_out - o.packets_out);
      const drawn = now.cpp[name][now.cpp[name].length - 1];
      if (Math.abs(drawn.y - cpp) > 1e-6 * cpp) fail(`app ${name}: the chart's last cycles/packet ${drawn.y}, its counters give ${cpp}`);
      if (Math.abs(drawn.x - (p.t - history.started)) > 1e-3) fail(`app ${name}: the last point at ${drawn.x} s, taken at ${p.t - history.started} s`);
      const cycles = apps.reduce((n, x) => n + p.apps[x].cycles - prev.apps[x].cycles, 0);
      const share = 100 * (a.cycles - o.cycles) / cycles, drawnShare = now.share[name][now.share[name].length - 1].y;
      if (Math.abs(drawnShare - share) > 1e-6) fail(`app ${name}: the chart's last share ${drawnShare}%, the counters give ${share}%`);
      const row = now.rows[name]; // (read with the chart: the same point)
      if (row[1] !== cpp.toFixed(1) || row[5] !== comma(a.packets_in)) fail(`app ${name}'s latest row ${row}, want ${cpp.toFixed(1)} cycles/packet, ${a.packets_in} packets in`);
    }
    if (now.points < first.points + 1) fail(`the chart did not grow: ${first.points} then ${now.points} points`);
    console.log(`inspect_compare_check: OK (live: ${first.points} points when the page opened, ${now.points} later; ` +
      `last: ${apps.map((n) => `${n} ${p.apps[n].cycles_per_packet.toFixed(1)} cycles/packet`).join(", ")})`);
  });
}

({compare, files, live}[mode] || (() => fail("mode: compare, files or live")))(rest).catch((e) => fail(e.stack || String(e)));
