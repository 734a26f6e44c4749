// node tests/inspect_source_check.js URL RUNDIR SNABB SOURCE: drives snabb inspect's page (at
// URL, serving RUNDIR) in headless Chromium and checks its hot machine code and source view
// against the run directory read here: the address table (vmprofile/addresses, parsed below from
// its layout in observe/vmprofile.h), the zone files, and the auditlog as `snabb auditlog --json`
// decodes it; SOURCE is the Lua file the run's app fwd came from.
"use strict";
const {readZone, launch} = require("./inspect_page.js");
const {execFileSync} = require("child_process");
const fs = require("fs");

const fail = (message) => { console.error("FAIL: " + message); process.exit(1); };
const [url, dir, snabb, sourceFile] = process.argv.slice(2);
if (!sourceFile) fail("usage: node inspect_source_check.js URL RUNDIR SNABB SOURCE");

// The address table (observe/vmprofile.h, version 1): a 64-byte header (magic "SNABBVMA",
// version, slots, hz, probes, samples, overflow, used, 2 reserved) then slots of 24 bytes
// (address u64, trace u32, flushes u32, count u64; address 0: free).
function readAddresses(path) {
  const b = fs.readFileSync(path);
  if (b.toString("latin1", 0, 8) !== "SNABBVMA" || b.readUInt32LE(8) !== 1) fail(path + ": not an address table of version 1");
  const slots = b.readUInt32LE(12);
  if (b.length !== 64 + 24 * slots) fail(`${path}: ${b.length} bytes for ${slots} slots`);
  const t = {samples: Number(b.readBigUInt64LE(24)), overflow: Number(b.readBigUInt64LE(32)), used: Number(b.readBigUInt64LE(40)), entries: []};
  for (let i = 0; i < slots; i++) {
    const at = 64 + 24 * i, address = Number(b.readBigUInt64LE(at));
    if (address) t.entries.push({address, trace: b.readUInt32LE(at + 8), flushes: b.readUInt32LE(at + 12), count: Number(b.readBigUInt64LE(at + 16))});
  }
  return t;
}
// A zone file's loop + head samples per trace row.
function zoneTraces(path) {
  const rows = {};
  for (const [t, r] of Object.entries(readZone(path).traces)) {
    const n = (r.loop || 0) + (r.head || 0);
    if (n) rows[t] = n;
  }
  return rows;
}

const table = readAddresses(dir + "/vmprofile/addresses");
const zoneRows = {};
for (const f of fs.readdirSync(dir + "/vmprofile").filter((f) => f.endsWith(".vmprofile"))) {
  for (const [t, n] of Object.entries(zoneTraces(dir + "/vmprofile/" + f))) zoneRows[t] = (zoneRows[t] || 0) + n;
}
// Every sample in a trace is in the table (the same signal handler writes both).
const inTraces = Object.values(zoneRows).reduce((a, b) => a + b, 0);
if (table.samples !== inTraces) fail(`the address table has ${table.samples} samples, the zone files ${inTraces} in traces`);
const counted = table.entries.reduce((a, e) => a + e.count, 0);
if (counted + table.overflow !== table.samples) fail(`slots count ${counted} + overflow ${table.overflow} != ${table.samples}`);
if (table.used !== table.entries.length) fail(`used ${table.used}, ${table.entries.length} slots taken`);

const log = JSON.parse(execFileSync(snabb, ["auditlog", dir + "/audit.log", "--all", "--json"], {encoding: "utf8", maxBuffer: 1 << 30}));
const protos = log.protos;
const sourceOf = (id) => ((Array.isArray(protos) ? protos[id - 1] : protos[id]) || {}).source; // (a JSON array from 1)
// The latest trace of each number, and its samples from the table (its number, generation and
// machine code).
const latest = {};
for (const t of log.traces) latest[t.number] = t;
const mcodeAddress = (t) => typeof t.mcode.address === "string" ? parseInt(t.mcode.address, 16) : t.mcode.address;
const mcodeSize = (t) => t.mcode.size !== undefined ? t.mcode.size : t.mcode.bytes.length / 2;
const samplesOf = (t) => table.entries.filter((e) => e.trace === t.number && e.flushes === t.generation &&
  e.address >= mcodeAddress(t) && e.address < mcodeAddress(t) + mcodeSize(t));

const apps = JSON.parse(fs.readFileSync(dir + "/apps.json", "utf8")).apps;
const fwd = apps.find((a) => a.name === "fwd");
if (!fwd || !fwd.code || !fwd.code.length) fail("apps.json has no code range for app fwd");
const chunk = fwd.code[0].source.replace(/^@/, "");

(async () => {
  const {browser, page: page, errors} = await launch();
  try {
    const ready = (hash) => page.waitForFunction((h) => document.body.dataset.ready === h, hash);

    // The hottest trace (by the table): its machine-code lines' counts are the table's.
    let hottest = null, most = 0;
    for (const t of Object.values(latest)) {
      if (!t.mcode) continue;
      const n = samplesOf(t).reduce((a, e) => a + e.count, 0);
      if (n > most) { hottest = t; most = n; }
    }
    if (!hottest) fail("no trace has samples in the address table");
    await page.goto(url + "#/trace/" + hottest.number);
    await ready("#/trace/" + hottest.number);
    const hot = await page.$eval("#trace-hot", (p) => ({...p.dataset}));
    if (Number(hot.total) !== most) fail(`trace ${hottest.number}: ${hot.total} samples by address shown, the table has ${most}`);
    // Against the zone files: the table's count for this number (any generation) and the zones'
    // differ at most by the samples that found no slot.
    const anyGen = table.entries.filter((e) => e.trace === hottest.number).reduce((a, e) => a + e.count, 0);
    const zone = zoneRows[hottest.number] || 0;
    if (!(anyGen <= zone && zone <= anyGen + table.overflow)) fail(`trace ${hottest.number}: table ${anyGen}, zones ${zone}, overflow ${table.overflow}`);
    // Each line shown: the samples at its address (a sample is an instruction's start); the
    // lines of every page add up to the total (less samples at no listed instruction).
    let sum = 0;
    for (;;) {
      const lines = await page.$$eval("#mcode .line", (ls) => ls.map((l) => ({samples: Number(l.dataset.samples), text: l.textContent})));
      for (const l of lines) {
        const m = l.text.replace(/^->LOOP:\n/, "").match(/^\s*\d*\s([0-9a-f]{8,16})\s/);
        if (!m) fail("machine-code line without an address: " + l.text);
        const a = parseInt(m[1], 16);
        const want = samplesOf(hottest).filter((e) => e.address === a).reduce((x, e) => x + e.count, 0);
        if (l.samples !== want) fail(`trace ${hottest.number} at ${m[1]}: ${l.samples} samples shown, the table has ${want}`);
        const shown = l.text.replace(/^->LOOP:\n/, "").slice(0, 6).trim();
        if (shown !== (want ? String(want) : "")) fail(`at ${m[1]}: count column '${shown}', want ${want}`);
        sum += l.samples;
      }
      const next = await page.$("#mcode .pager button:last-of-type:not([disabled])");
      if (!next) break;
      await next.click();
    }
    if (sum + Number(hot.outside) !== most) fail(`lines add up to ${sum} + ${hot.outside} outside, the table has ${most}`);
    const shaded = await page.$$eval("#mcode .line[style*='background']", (ls) => ls.length);
    if (shaded === 0) fail("no machine-code line is shaded");

    // From the trace's bytecode to the source view (a link on the source line).
    const bcLink = await page.$("#bytecode a.src");
    if (!bcLink) fail("the bytecode's source lines are not links");
    await bcLink.click();
    await page.waitForFunction(() => (document.body.dataset.ready || "").startsWith("#/source/"));

    // The source view of fwd's file.
    const target = "#/source/" + encodeURIComponent("@" + chunk);
    await page.goto(url + target);
    await ready("#/source/@" + chunk);
    const lines = await page.$$eval("#source-lines .line", (ls) => ls.map((l) => ({line: Number(l.dataset.line),
      samples: Number(l.dataset.samples), traces: l.dataset.traces, text: l.querySelector(".code").textContent})));
    // Its text is the file's.
    const text = fs.readFileSync(sourceFile, "utf8").replace(/\n$/, "").split("\n");
    if (JSON.stringify(lines.map((l) => l.text)) !== JSON.stringify(text.slice(0, lines.length))) fail("the source view's text differs from " + sourceFile);
    const summary = await page.$eval("#source-summary", (p) => ({...p.dataset}));
    if (summary.from !== "auditlog") fail(`the text came from '${summary.from}', not the auditlog`);
    // Per-line samples add up to the samples it says it attributed.
    const perLine = lines.reduce((a, l) => a + l.samples, 0);
    if (perLine !== Number(summary.attributed)) fail(`lines add up to ${perLine}, ${summary.attributed} attributed`);
    // Where the log maps machine code to IR and bytecode (ir_mcode: each instruction's [start, end)
    // offsets; ir_bytecode: its index in the trace's bytecode, from 1, 0 for none), each line's
    // samples are the table's samples at addresses in instructions recorded for that line; an
    // instruction recorded for a C function (FUNCC: bit.band, an FFI metamethod; no line) is on
    // the line of the Lua bytecode that called it, the nearest record before it of a lower depth.
    const recordedAt = (t, k) => {
      let b = t.bytecode[k - 1];
      for (let j = k - 2; b && !b.line && j >= 0; j--) {
        const c = t.bytecode[j];
        if ((c.depth || 0) < (b.depth || 0) && c.line) b = c;
      }
      return b;
    };
    const mapped = Object.values(latest).filter((t) => t.ir_mcode && t.ir_bytecode && t.mcode);
    let busiest = null;
    if (mapped.length) {
      const wantAll = {}; // source -> line -> samples
      for (const t of mapped) {
        for (const e of samplesOf(t)) {
          const off = e.address - mcodeAddress(t);
          for (let ins = 1; 2 * ins <= t.ir_mcode.length; ins++) {
            if (off < t.ir_mcode[2 * ins - 2] || off >= t.ir_mcode[2 * ins - 1]) continue;
            const b = recordedAt(t, t.ir_bytecode[ins - 1]);
            const src = b && b.proto && b.line > 0 && sourceOf(b.proto);
            if (src) { wantAll[src] = wantAll[src] || {}; wantAll[src][b.line] = (wantAll[src][b.line] || 0) + e.count; }
          }
        }
      }
      const want = wantAll[chunk] || {};
      for (const l of lines) {
        if (l.samples !== (want[l.line] || 0)) fail(`line ${l.line}: ${l.samples} samples, the table through the IR map gives ${want[l.line] || 0}`);
      }
      // The file most samples land in (forward.lua's loop inlines runtime/link.lua, where most of
      // its time goes): its lines as the source view's API gives them.
      const total = (src) => Object.values(wantAll[src]).reduce((a, b) => a + b, 0);
      busiest = Object.keys(wantAll).sort((a, b) => total(b) - total(a))[0];
      if (!busiest || total(busiest) === 0) fail("the IR map puts no sample on any line");
      const got = await page.evaluate(async (c) => (await fetch("/inspect/api/source?chunk=" + encodeURIComponent("@" + c))).json(), busiest);
      const gotLines = {};
      for (const r of got.lines) if (r.samples) gotLines[r.line] = r.samples;
      if (JSON.stringify(gotLines) !== JSON.stringify(wantAll[busiest]) || got.attributed !== total(busiest)) {
        fail(`${busiest}: per-line samples ${JSON.stringify(gotLines)} (${got.attributed}), the table through the IR map gives ${JSON.stringify(wantAll[busiest])}`);
      }
      busiest += ` ${total(busiest)} samples on ${Object.keys(wantAll[busiest]).length} lines`;
    }
    // Traces by line: those whose bytecode (snabb auditlog --json) covers it.
    const cover = {};
    for (const t of Object.values(latest)) {
      for (const b of t.bytecode || []) {
        if (b.proto && b.line > 0 && sourceOf(b.proto) === chunk) {
          cover[b.line] = cover[b.line] || new Set();
          cover[b.line].add(t.number);
        }
      }
    }
    let covered = 0;
    for (const l of lines) {
      const want = [...(cover[l.line] || [])].sort((a, b) => a - b).join(",");
      if (l.traces !== want) fail(`line ${l.line}: traces ${l.traces}, the auditlog's bytecode covers it with ${want}`);
      if (want) covered++;
    }
    if (covered === 0) fail(`no line of ${chunk} is covered by a trace`);
    // Samples not put on lines: each trace's as the table has it (without the IR map, all of them).
    const unplaced = await page.$$eval("tr[data-trace]", (trs) => trs.map((tr) => [Number(tr.dataset.trace), Number(tr.children[1].textContent.replace(/,/g, ""))]));
    const noMap = await page.$("#source-nomap");
    for (const [tr, n] of unplaced) {
      const want = samplesOf(latest[tr]).reduce((a, e) => a + e.count, 0);
      if (noMap ? n !== want : n > want) fail(`trace ${tr}: ${n} samples not on a line, the table has ${want}`);
    }
    if (noMap && unplaced.length === 0) fail("no trace's samples shown for the file");
    // The interpreter's samples of app fwd, from its zone (trace 0, state interp).
    const interp = await page.textContent("#source-interp");
    if (!interp || !interp.includes("fwd")) fail(`no interpreted samples line for app fwd: ${interp}`);
    // A line to go to: selected, focused.
    const goto = lines.find((l) => l.traces).line;
    await page.goto(url + target + "/line/" + goto);
    await ready(`#/source/@${chunk}/line/${goto}`);
    const sel = await page.$eval("#source-lines .line.selected", (l) => [Number(l.dataset.line), document.activeElement === l]);
    if (sel[0] !== goto || !sel[1]) fail(`#/source/.../line/${goto}: selected ${sel}`);
    // The app page links its code range to the source view.
    await page.goto(url + "#/app/fwd");
    await ready("#/app/fwd");
    const appLink = await page.$eval("#app-detail a[href^='#/source/']", (a) => a.getAttribute("href"));
    if (!appLink.startsWith(target)) fail(`the app's code links to ${appLink}, want ${target}/line/N`);
    if (errors.length) fail("page errors: " + errors.join("; "));
    console.log(`inspect_source_check: OK (trace ${hottest.number}: ${most} samples by address, zones ${zone}; ` +
      `${chunk}: ${covered} lines covered, ${summary.attributed} samples on lines, ${unplaced.length} traces' not; ` +
      (busiest ? `through the IR map, most in ${busiest}; ` : "without the IR map; ") +
      `table ${table.samples} samples, ${table.used} slots, overflow ${table.overflow})`);
  } finally {
    await browser.close();
  }
})().catch((e) => fail(e.stack || String(e)));
