// node tests/inspect_views_check.js CLOSURE_URL CLOSURE_JSON BLACKLISTED FORWARD_URL FORWARD_JSON
//   MANY_URL MANY_JSON: drives snabb inspect's side-trace trees and aborts view (tree.js, aborts.js)
// in headless Chromium (Debian's, with playwright-core) on three runs, each served at its URL and
// listed by `snabb auditlog FILE --all --json` in its JSON file, and checks what they show against
// those listings: every edge of the trees is a trace's parent and exit, every node a trace in one;
// the selected trace's node is focused, arrow keys go to its parent and children and Enter opens
// the trace; the aborts' groups (place, reason) and counts are the log's; the code blacklisted is
// the log's, and BLACKLISTED (FILE:LINE, the closure config's loop) among it; the reason of LuaJIT's
// "NYI: bytecode" (FNEW) is in plain words. The forward run blacklists nothing of forward.lua.
// Prints the load times of the trees of the run with about a thousand traces.
"use strict";
const {launch} = require("./inspect_page.js");
const fs = require("fs");

const fail = (message) => { console.error("FAIL: " + message); process.exit(1); };
const [closureUrl, closureJson, blacklisted, forwardUrl, forwardJson, manyUrl, manyJson] = process.argv.slice(2);
if (!manyJson) fail("usage: node inspect_views_check.js CLOSURE_URL CLOSURE_JSON FILE:LINE FORWARD_URL FORWARD_JSON MANY_URL MANY_JSON");
const read = (path) => JSON.parse(fs.readFileSync(path, "utf8"));

// The trees as the log has them: the latest trace of each number (as snabb inspect lists them),
// an edge from each side trace's parent when that is one of them, of the same flush generation.
function expectedTrees(log) {
  const byNumber = new Map();
  for (const t of log.traces) byNumber.set(t.number, t);
  const edges = new Set(), nodes = new Set(), sides = [];
  for (const t of byNumber.values()) {
    const parent = t.parent && byNumber.get(t.parent);
    if (parent && parent.generation === t.generation && t.parent !== t.number) {
      edges.add(`${t.parent}->${t.number}/${t.exit}`);
      sides.push(t);
      nodes.add(t.parent);
      nodes.add(t.number);
    }
  }
  return {byNumber, edges, nodes, sides};
}

// Abort groups as the log has them: by where recording stopped and why.
function expectedGroups(log) {
  const groups = new Map();
  for (const a of log.aborts) {
    const where = a.cfunc ? `${a.cfunc} (built-in)` : `${a.source}:${a.line}`;
    const key = where + "\t" + a.reason;
    groups.set(key, (groups.get(key) || 0) + 1);
  }
  return groups;
}

const sorted = (set) => [...set].sort();
const same = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));

(async () => {
  const {browser, page: page, errors} = await launch();
  try {
    const ready = (hash) => page.waitForFunction((h) => document.body.dataset.ready === h, hash);
    const open = async (url, hash) => {
      const started = Date.now();
      if (page.url().split("#")[0] === url) await page.evaluate((h) => { location.hash = h; }, hash);
      else await page.goto(url + hash);
      await ready(hash);
      const error = await page.$eval("#error", (e) => (e.hidden ? "" : e.textContent));
      if (error) fail(`${hash}: ${error}`);
      return Date.now() - started;
    };
    const pagesOf = async () => {
      const text = await page.$eval("#view", (v) => v.textContent);
      const m = text.match(/page 1 of (\d+)/);
      return m ? Number(m[1]) : 1;
    };

    // ---- The closure run's trees: nodes and edges over every page of #/tree.
    const log = read(closureJson);
    const want = expectedTrees(log);
    if (want.edges.size === 0) fail("the closure run has no side trace");
    await open(closureUrl, "#/tree");
    const pages = await pagesOf();
    const edges = new Set(), nodes = new Set();
    for (let p = 1; p <= pages; p++) {
      await open(closureUrl, p === 1 ? "#/tree" : `#/tree/page/${p}`);
      // Every tree opened (the first few are; the others are drawn when opened).
      for (const s of await page.$$("details.tree:not([open]) > summary")) await s.click({position: {x: 2, y: 2}});
      await page.waitForFunction(() => [...document.querySelectorAll("details.tree")].every((d) => d.querySelector("svg")));
      for (const e of await page.$$eval("path.edge", (es) => es.map((x) => `${x.dataset.from}->${x.dataset.to}/${x.dataset.exit}`))) {
        if (edges.has(e)) fail(`edge ${e} drawn twice`);
        edges.add(e);
      }
      for (const n of await page.$$eval("a.node", (as) => as.map((a) => ({trace: Number(a.dataset.trace), label: a.getAttribute("aria-label"),
        href: a.getAttribute("href")})))) {
        const t = want.byNumber.get(n.trace);
        if (!t) fail(`node ${n.trace}: no such trace in the log`);
        if (n.href !== "#/trace/" + n.trace) fail(`node ${n.trace} links to ${n.href}`);
        if (!n.label.includes(t.linktype) || !n.label.includes(t.span)) fail(`node ${n.trace}: '${n.label}' lacks ${t.linktype} or ${t.span}`);
        nodes.add(n.trace);
      }
    }
    if (!same(edges, want.edges)) fail(`edges drawn ${sorted(edges)}, the log's ${sorted(want.edges)}`);
    if (!same(nodes, want.nodes)) fail(`nodes drawn ${sorted(nodes)}, the log's ${sorted(want.nodes)}`);
    const stitches = [...want.edges].filter((e) => e.endsWith("/-1")).length;
    if (stitches && await page.$$eval("path.edge.stitch", (es) => es.length) === 0 && pages === 1) fail("no stitch edge drawn dashed");

    // One side trace's tree, from the trace view's link: it is selected and focused; arrow keys
    // move to its parent and to that one's first child; Enter opens the trace.
    const side = want.sides[0];
    await open(closureUrl, "#/trace/" + side.number);
    await page.click(`a[href="#/tree/${side.number}"]`);
    await ready("#/tree/" + side.number);
    await page.waitForFunction((n) => document.activeElement && document.activeElement.dataset.trace === String(n), side.number);
    if (!(await page.$(`a.node.selected[data-trace="${side.number}"]`))) fail(`trace ${side.number} not selected in its tree`);
    await page.keyboard.press("ArrowLeft");
    const focused = () => page.evaluate(() => Number(document.activeElement.dataset.trace));
    if (await focused() !== side.parent) fail(`ArrowLeft from ${side.number} went to ${await focused()}, its parent is ${side.parent}`);
    await page.keyboard.press("ArrowRight");
    const child = await focused();
    if (![...want.edges].some((e) => e.startsWith(`${side.parent}->${child}/`))) fail(`ArrowRight from ${side.parent} went to ${child}, not a child`);
    await page.keyboard.press("ArrowLeft");
    await page.keyboard.press("Enter");
    await ready("#/trace/" + side.parent);
    const heading = await page.textContent("#view h2");
    if (heading !== `Trace ${side.parent}`) fail(`Enter on node ${side.parent} opened '${heading}'`);

    // ---- The closure run's aborts: groups and counts over every page.
    const wantGroups = expectedGroups(log);
    await open(closureUrl, "#/aborts");
    const abortPages = await pagesOf();
    const rows = [];
    for (let p = 1; p <= abortPages; p++) {
      await open(closureUrl, p === 1 ? "#/aborts" : `#/aborts/page/${p}`);
      rows.push(...await page.$$eval("#abort-groups tbody tr", (trs) => trs.map((tr) => ({
        where: tr.dataset.where, reason: tr.dataset.reason, count: Number(tr.dataset.count),
        shownCount: tr.children[1].textContent, words: tr.children[2].textContent, text: tr.children[4].textContent}))));
    }
    const gotGroups = new Map(rows.map((r) => [r.where + "\t" + r.reason, r.count]));
    if (rows.length !== wantGroups.size || gotGroups.size !== rows.length) fail(`${rows.length} abort groups shown, the log has ${wantGroups.size}`);
    for (const [k, n] of wantGroups) if (gotGroups.get(k) !== n) fail(`abort group ${k}: ${gotGroups.get(k)} shown, the log has ${n}`);
    for (const r of rows) if (r.shownCount !== Number(r.count).toLocaleString("en-US")) fail(`${r.where}: count shown '${r.shownCount}'`);
    // LuaJIT's "NYI: bytecode %d" for FNEW, in words, and the line's text as the file has it.
    const [file, line] = [blacklisted.replace(/:\d+$/, ""), Number(blacklisted.match(/:(\d+)$/)[1])];
    const lines = fs.readFileSync(file, "utf8").split("\n");
    const fnew = log.aborts.find((a) => a.source === file && /^NYI: bytecode \d+$/.test(a.reason));
    if (!fnew) fail(`the log has no NYI abort in ${file}`);
    const fnewRow = rows.find((r) => r.where === `${fnew.source}:${fnew.line}` && r.reason === fnew.reason);
    if (!fnewRow.words.startsWith("creates a closure")) fail(`${fnew.reason} at ${fnewRow.where} in words: '${fnewRow.words}'`);
    if (fnewRow.text !== lines[fnew.line - 1].trim()) fail(`${fnewRow.where}'s line shown '${fnewRow.text}', the file has '${lines[fnew.line - 1].trim()}'`);

    // The code blacklisted: the log's, first in the view, the config's loop among it.
    const wantBl = log.aborts.filter((a) => a.blacklisted).map((a) => `${a.start.source}:${a.start.line}`);
    const bl = await page.$$eval("#blacklisted li", (lis) => lis.map((li) => ({where: li.dataset.where, aborts: Number(li.dataset.aborts),
      text: li.textContent, href: li.querySelector("a.src-link").getAttribute("href")})));
    if (JSON.stringify(bl.map((b) => b.where).sort()) !== JSON.stringify(wantBl.sort())) fail(`blacklisted ${bl.map((b) => b.where)}, the log ${wantBl}`);
    const loop = bl.find((b) => b.where === blacklisted);
    if (!loop) fail(`${blacklisted} (the config's loop) is not shown blacklisted: ${bl.map((b) => b.where)}`);
    const attempts = log.aborts.filter((a) => `${a.start.source}:${a.start.line}` === blacklisted).length;
    if (loop.aborts !== attempts || !loop.text.includes(`${attempts} aborts`)) fail(`${blacklisted}: ${loop.aborts} aborts shown, the log has ${attempts}`);
    if (!loop.text.startsWith("kept out of the JIT for good: " + blacklisted) || !loop.text.includes(lines[line - 1].trim())) fail(`blacklisting shown as '${loop.text}'`);
    if (loop.href !== `#/source/${encodeURIComponent(file)}/line/${line}`) fail(`source link ${loop.href}`);
    const first = await page.$eval("#view", (v) => [...v.querySelectorAll("#blacklisted, #abort-groups")].map((e) => e.id).join(","));
    if (first !== "blacklisted,abort-groups") fail(`blacklisted code not shown first: ${first}`);

    // ---- The forward run: nothing of forward.lua blacklisted, in the log or the view.
    const fwd = read(forwardJson);
    const fwdBl = fwd.aborts.filter((a) => a.blacklisted).map((a) => `${a.start.source}:${a.start.line}`);
    if (fwdBl.some((w) => w.includes("forward.lua"))) fail(`the forward run blacklisted ${fwdBl}`);
    await open(forwardUrl, "#/aborts");
    const fwdShown = await page.$$eval("#blacklisted li", (lis) => lis.map((li) => li.dataset.where));
    if (!same(fwdShown, fwdBl)) fail(`the forward run's view shows ${fwdShown} blacklisted, its log ${fwdBl}`);
    const fwdGroups = await page.$$eval("#abort-groups tbody tr", (trs) => trs.length);
    if (fwdGroups !== expectedGroups(fwd).size) fail(`the forward run: ${fwdGroups} groups shown, its log has ${expectedGroups(fwd).size}`);

    // ---- About a thousand traces (LuaJIT keeps at most 1,000): the trees' first page, and the biggest tree, drawn in time.
    const many = read(manyJson);
    const manyWant = expectedTrees(many);
    if (manyWant.byNumber.size < 900) fail(`many_traces.lua made ${manyWant.byNumber.size} traces`);
    const treeMs = await open(manyUrl, "#/tree");
    const summary = await page.textContent("#tree-summary");
    const roots = new Set([...manyWant.edges].map((e) => Number(e.split("->")[0]))).size;
    const isSide = new Set(manyWant.sides.map((t) => t.number));
    const withSide = [...manyWant.byNumber.values()].filter((t) => !isSide.has(t.number) &&
      [...manyWant.edges].some((e) => e.startsWith(t.number + "->"))).length;
    if (!summary.startsWith(`${withSide.toLocaleString("en-US")} root traces with side traces`)) fail(`summary '${summary}', the log has ${withSide} (${roots} parents)`);
    const drawn = await page.$$eval("a.node", (as) => as.length);
    const oneMs = await open(manyUrl, "#/tree/" + [...manyWant.byNumber.keys()].pop());
    console.log(`inspect_views_check: ${manyWant.byNumber.size} traces: #/tree (${drawn} nodes) in ${treeMs} ms, one tree in ${oneMs} ms`);
    if (treeMs > 2000) fail(`#/tree of ${manyWant.byNumber.size} traces took ${treeMs} ms`);
    if (errors.length) fail("page errors: " + errors.join("; "));
    console.log(`inspect_views_check: OK (${want.edges.size} edges, ${want.nodes.size} nodes in ${pages} page(s); ` +
      `${rows.length} abort groups; ${blacklisted} blacklisted after ${attempts} aborts; ${bl.length} blacklistings)`);
  } finally {
    await browser.close();
  }
})().catch((e) => fail(e.stack || String(e)));
