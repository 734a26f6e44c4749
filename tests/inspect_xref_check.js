// node tests/inspect_xref_check.js URL RUNDIR SNABB: drives the trace view of `snabb inspect` (at
// URL, serving RUNDIR) in headless Chromium (Debian's, with playwright-core) and checks its
// cross-references against the run's auditlog read here: the maps as `snabb auditlog FILE --json`
// decodes them (ir_mcode: each IR instruction's machine-code offsets; ir_bytecode: the bytecode it
// was recorded for) and the listings of `snabb auditlog FILE --trace N` (IR lines, machine-code
// addresses). With 40 lines a page (?lines=40), so that linked lines lie on other pages: it clicks
// an IR instruction whose machine code is on another page of that listing and checks the machine
// code and source line marked; selects a machine-code line with the keyboard and checks its IR
// instruction; clicks a bytecode line and checks the IR instructions recorded for it.
"use strict";
const {launch} = require("./inspect_page.js");
const {execFileSync} = require("child_process");

const fail = (message) => { console.error("FAIL: " + message); process.exit(1); };
const [url, dir, snabb] = process.argv.slice(2);
if (!snabb) fail("usage: node inspect_xref_check.js URL RUNDIR SNABB");
const LINES = 40;
const log = dir + "/audit.log";

// The decoded log, and a trace as snabb auditlog lists it.
const json = JSON.parse(execFileSync(snabb, ["auditlog", log, "--all", "--json"], {encoding: "utf8", maxBuffer: 1 << 30}));
function listing(n) {
  const lines = execFileSync(snabb, ["auditlog", log, "--trace", String(n), "--all"], {encoding: "utf8"}).split("\n");
  const section = (from, to) => {
    const i = lines.findIndex((l) => l.startsWith(from));
    if (i < 0) fail(`no '${from}' in snabb auditlog --trace ${n}`);
    const out = [];
    for (let k = i + 1; k < lines.length && !lines[k].startsWith(to); k++) out.push(lines[k]);
    return out;
  };
  return {ir: section(`---- TRACE ${n} IR`, `---- TRACE ${n} `),
    mcode: section(`---- TRACE ${n} mcode`, `---- TRACE ${n} stop`).filter((l) => l !== "->LOOP:")};
}

// The latest trace of each number (as snabb inspect shows them), the one with the most machine
// code among those with the maps.
const latest = {};
for (const t of json.traces) latest[t.number] = t;
const t = Object.values(latest).filter((x) => x.ir_mcode && x.ir_bytecode && x.mcode)
  .sort((a, b) => b.mcode.size - a.mcode.size)[0];
if (!t) fail("no trace in the auditlog has the maps (ir_mcode, ir_bytecode): a LuaJIT without mcode-map.patch?");
const want = listing(t.number);
const insLine = {};  // instruction -> its IR listing line
want.ir.forEach((l, i) => { const m = l.match(/^(\d{4}) /); if (m) insLine[Number(m[1])] = i; });
const offset = (line) => parseInt(line.split(/\s+/)[0], 16) - t.mcode.address;
const range = (ins) => [t.ir_mcode[2 * ins - 2], t.ir_mcode[2 * ins - 1]];
const mcodeOf = (ins) => { const [s, e] = range(ins); return want.mcode.filter((l) => offset(l) >= s && offset(l) < e).map((l) => l.split(/\s+/)[0]); };
const insOf = (off) => { for (let ins = 1; ins <= t.nins; ins++) { const [s, e] = range(ins); if (off >= s && off < e) return ins; } return null; };
const sourceOf = (ins) => {
  const b = t.bytecode[t.ir_bytecode[ins - 1] - 1];
  // (protos, a Lua list from 1, is a JSON array from 0)
  return b && b.line ? `${json.protos[b.proto - 1].source}:${b.line}` : null;
};
const page = (index) => Math.floor(index / LINES);

(async () => {
  const {browser, page: p, errors} = await launch();
  try {
    const started = Date.now();
    await p.goto(`${url}?lines=${LINES}#/trace/${t.number}`);
    await p.waitForFunction((h) => document.body.dataset.ready === h, `#/trace/${t.number}`);
    console.log(`inspect_xref_check: trace ${t.number} (${t.nins} IR instructions, ${want.mcode.length} machine-code lines) shown in ${Date.now() - started} ms`);
    const linked = (pane) => p.$$eval(`#${pane} .line.linked`, (ls) => ls.map((l) => l.dataset.address || l.dataset.line || l.textContent));
    const pageShown = (pane) => p.$eval(`#${pane} .line`, (l) => Math.floor(Number(l.dataset.index) / 40));
    // Turns a listing's pages with its pager's buttons (‹ previous, next ›) to page n.
    const goPage = async (pane, n) => {
      for (let shown = await pageShown(pane); shown !== n; shown = await pageShown(pane)) {
        await p.click(`#${pane} .pager:first-of-type button:${shown < n ? "last-of-type" : "first-of-type"}`);
      }
    };

    // 1. An IR instruction on the IR listing's first page whose machine code (and bytecode with a
    // source line) lies on a later page of the machine-code listing: clicked, its machine code and
    // source line are marked, the machine-code listing turned to them.
    const candidates = Object.keys(insLine).map(Number).filter((ins) => page(insLine[ins]) === 0 &&
      mcodeOf(ins).length > 0 && sourceOf(ins));
    if (candidates.length === 0) fail(`trace ${t.number}: no instruction on the first page with machine code and a source line`);
    const ins = candidates.find((i) => page(want.mcode.findIndex((l) => l.startsWith(mcodeOf(i)[0]))) > 0) || candidates[0];
    const wantMc = mcodeOf(ins), wantSrc = sourceOf(ins);
    await p.click(`#ir .line[data-index="${insLine[ins]}"]`);
    const mc = await linked("mcode");
    const mcPage = page(want.mcode.findIndex((l) => l.startsWith(wantMc[0])));
    const wantShown = wantMc.filter((a) => page(want.mcode.findIndex((l) => l.startsWith(a))) === mcPage);
    if (JSON.stringify(mc) !== JSON.stringify(wantShown)) fail(`IR ${want.ir[insLine[ins]]}: machine code ${mc}, the auditlog's range ${range(ins)} holds ${wantMc}`);
    if ((await pageShown("mcode")) !== mcPage) fail(`the machine-code listing shows page ${await pageShown("mcode")}, its lines are on ${mcPage}`);
    const src = await linked("bytecode");
    if (src.length === 0 || src.some((s) => s !== wantSrc)) fail(`IR ${want.ir[insLine[ins]]}: bytecode lines at ${src}, the auditlog records it at ${wantSrc}`);
    const said = await p.textContent("#xref-map");
    if (!said.includes(wantSrc) || !said.includes(wantMc[0])) fail(`#xref-map says '${said}', want ${wantSrc} and ${wantMc[0]}`);

    // 2. A machine-code line of another instruction, on another page, selected with the keyboard
    // (Tab to it, Enter): its IR instruction is marked, the IR listing turned to it.
    const other = want.mcode.findIndex((l, i) => page(i) > 0 && insOf(offset(l)) && page(insLine[insOf(offset(l))]) > 0) ;
    const mcIndex = other >= 0 ? other : want.mcode.findIndex((l) => insOf(offset(l)) && insOf(offset(l)) !== ins);
    if (mcIndex < 0) fail(`trace ${t.number}: no machine code of a second instruction`);
    const owner = insOf(offset(want.mcode[mcIndex]));
    await goPage("mcode", page(mcIndex));
    await p.focus(`#mcode .line[data-index="${mcIndex}"]`);
    await p.keyboard.press("Enter");
    const irMarked = await linked("ir");
    if (JSON.stringify(irMarked) !== JSON.stringify([want.ir[insLine[owner]]])) {
      fail(`machine code ${want.mcode[mcIndex]}: IR ${JSON.stringify(irMarked)}, the auditlog puts it in ${want.ir[insLine[owner]]}`);
    }
    if ((await pageShown("ir")) !== page(insLine[owner])) fail(`the IR listing shows page ${await pageShown("ir")}, the instruction is on ${page(insLine[owner])}`);

    // 3. The bytecode line the first instruction was recorded for, clicked: the IR instructions
    // recorded for it (those of the page the listing shows) are marked.
    // (The instruction again, and its bytecode reached from the cross-reference with the keyboard.)
    await goPage("ir", page(insLine[ins]));
    await p.click(`#ir .line[data-index="${insLine[ins]}"]`);
    await p.focus("#xref-map .map-bc");
    await p.keyboard.press("Enter");
    const bcIndex = await p.evaluate(() => Number(document.activeElement.dataset.index));
    if (!(await p.evaluate(() => document.activeElement.closest("#bytecode") !== null))) fail("the source line's button did not reach the bytecode line");
    await p.keyboard.press("Enter");
    if (!(await p.$eval(`#bytecode .line[data-index="${bcIndex}"]`, (l) => l.classList.contains("selected")))) fail("the bytecode line is not selected");
    const k = t.ir_bytecode[ins - 1];
    const recorded = Object.keys(insLine).map(Number).filter((i) => t.ir_bytecode[i - 1] === k);
    const irPage = await pageShown("ir");
    const wantIr = recorded.filter((i) => page(insLine[i]) === irPage).map((i) => want.ir[insLine[i]]);
    const gotIr = await linked("ir");
    if (wantIr.length === 0 || JSON.stringify(gotIr) !== JSON.stringify(wantIr)) {
      fail(`bytecode at ${wantSrc}: IR ${JSON.stringify(gotIr)} marked on page ${irPage}, the auditlog records ${JSON.stringify(wantIr)} there (of ${recorded.length})`);
    }
    const allMc = recorded.flatMap(mcodeOf);
    const mcMarked = await linked("mcode");
    if (mcMarked.length === 0 || mcMarked.some((a) => !allMc.includes(a))) fail(`bytecode at ${wantSrc}: machine code ${mcMarked}, its instructions' is ${allMc}`);
    if (errors.length) fail("page errors: " + errors.join("; "));
    console.log(`inspect_xref_check: OK (trace ${t.number}: IR ${String(ins).padStart(4, "0")} -> ${wantMc.length} machine-code lines on page ${mcPage + 1}, ${wantSrc}; ` +
      `${want.mcode[mcIndex].split(/\s+/)[0]} -> IR ${String(owner).padStart(4, "0")}; bytecode -> ${recorded.length} IR instructions)`);
  } finally {
    await browser.close();
  }
})().catch((e) => fail(e.stack || String(e)));
