// node tests/inspect_check.js URL RUNDIR SNABB: drives `snabb inspect`'s page (at URL, serving
// RUNDIR) in headless Chromium (Debian's, with playwright-core) as a user would, and checks what
// it shows against the run directory read here: apps.json (the engine's counters), the vmprofile
// zone files (parsed by tests/inspect_page.js from their layout in observe/vmprofile.h) and the auditlog as `snabb
// auditlog --trace N` lists it. It opens the profile, goes to an app with the keyboard, clicks its
// hottest trace, a guard in its IR and a machine-code exit jump, and checks the cross-references;
// then that requests outside the API are refused. Prints the page's load time.
"use strict";
const {STATES, readZone, launch} = require("./inspect_page.js");
const {execFileSync} = require("child_process");
const fs = require("fs");
const http = require("http");

const fail = (message) => { console.error("FAIL: " + message); process.exit(1); };
const [url, dir, snabb] = process.argv.slice(2);
if (!snabb) fail("usage: node inspect_check.js URL RUNDIR SNABB");
const origin = new URL(url).origin;

// A request with the path as it is (fetch would resolve "..").
function raw(method, path) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({host: u.hostname, port: u.port, path, method}, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { body += c; });
      res.on("end", () => resolve({status: res.statusCode, body}));
    });
    req.on("error", reject);
    req.end();
  });
}
const compiled = (row) => (row && (row.loop || 0) + (row.head || 0)) || 0;

const apps = JSON.parse(fs.readFileSync(dir + "/apps.json", "utf8")).apps;
const zones = {};
for (const f of fs.readdirSync(dir + "/vmprofile")) if (f.endsWith(".vmprofile")) zones[f.replace(/\.vmprofile$/, "")] = readZone(dir + "/vmprofile/" + f);
const comma = (n) => Number(n).toLocaleString("en-US");

// The IR and machine code of trace n as `snabb auditlog` lists them.
function listing(n) {
  const text = execFileSync(snabb, ["auditlog", dir + "/audit.log", "--trace", String(n), "--all"], {encoding: "utf8"});
  const lines = text.split("\n");
  const section = (from, to) => {
    const i = lines.indexOf(from);
    if (i < 0) fail(`no '${from}' in snabb auditlog --trace ${n}`);
    const out = [];
    for (let k = i + 1; k < lines.length && !lines[k].startsWith(to); k++) out.push(lines[k]);
    return out;
  };
  const ir = section(`---- TRACE ${n} IR`, `---- TRACE ${n} `);
  const mcode = section(lines.find((l) => l.startsWith(`---- TRACE ${n} mcode`)), `---- TRACE ${n} stop`).filter((l) => l !== "->LOOP:");
  return {ir, mcode};
}

(async () => {
  const {browser, page: page, errors} = await launch();
  try {
    page.on("request", (r) => { if (!r.url().startsWith(origin + "/inspect")) errors.push("fetches " + r.url()); });
    const ready = (hash) => page.waitForFunction((h) => document.body.dataset.ready === h, hash);
    const started = Date.now();
    await page.goto(url);
    await ready("#/apps");
    console.log(`inspect_check: the profile page loaded in ${Date.now() - started} ms`);

    // Profile by app: each app's figures as the engine counted them and its samples as sampled.
    const rows = await page.$$eval("tbody tr[data-app]", (trs) => trs.map((tr) => ({
      app: tr.dataset.app, cells: [...tr.children].map((td) => td.textContent)})));
    if (rows.length !== apps.length) fail(`${rows.length} app rows, apps.json has ${apps.length}`);
    for (const a of apps) {
      const row = rows.find((r) => r.app === a.name);
      if (!row) fail("no row for app " + a.name);
      const want = [a.name, a.class, a.cycles_per_packet.toFixed(1), null, comma(a.packets_in), comma(a.packets_out),
        comma(zones[a.name] ? zones[a.name].samples : 0)];
      want.forEach((w, i) => { if (w !== null && row.cells[i] !== w) fail(`app ${a.name} column ${i}: '${row.cells[i]}', want '${w}'`); });
    }

    // An app, reached with the keyboard: its VM states and its hottest trace.
    const app = "fwd", zone = zones[app];
    if (!zone || zone.samples === 0) fail("app fwd has no samples in its zone");
    await page.focus(`tr[data-app="${app}"] a`);
    await page.keyboard.press("Enter");
    await ready("#/app/" + app);
    const states = await page.$$eval("#app-detail table:first-of-type tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    const words = {loop: "compiled loop", head: "compiled entry", interp: "interpreted", c: "C/FFI", gc: "garbage collection",
      exit: "leaving compiled code", record: "JIT recording", optimise: "JIT optimising", assemble: "JIT assembling", runtime: "snabb runtime"};
    const wantStates = STATES.filter((s) => zone.total[s]).map((s) => [words[s], comma(zone.total[s])]);
    if (JSON.stringify(states.map((r) => r.slice(0, 2))) !== JSON.stringify(wantStates)) {
      fail(`app ${app}'s VM states ${JSON.stringify(states)}, its zone has ${JSON.stringify(wantStates)}`);
    }
    let hottest = 0;
    for (const t of Object.keys(zone.traces).map(Number)) {
      if (t > 0 && compiled(zone.traces[t]) > compiled(zone.traces[hottest])) hottest = t;
    }
    if (!hottest) fail(`app ${app} has no samples in compiled code`);
    const first = await page.$eval("#app-detail tr[data-trace]", (tr) => [...tr.children].map((td) => td.textContent));
    if (first[0] !== String(hottest) || first[1] !== comma(compiled(zone.traces[hottest]))) {
      fail(`app ${app}'s hottest trace shown: ${first}; its zone says trace ${hottest}, ${compiled(zone.traces[hottest])} samples`);
    }

    // Its hottest trace, clicked: samples over every zone, the IR as snabb auditlog lists it.
    await page.click(`#app-detail tr[data-trace="${hottest}"] a`);
    await ready("#/trace/" + hottest);
    let total = 0;
    for (const z of Object.values(zones)) total += compiled(z.traces[hottest]);
    const shown = await page.textContent("#trace-samples");
    if (shown !== comma(total)) fail(`trace ${hottest}: ${shown} samples shown, the zones have ${total}`);
    const want = listing(hottest);
    const irHead = await page.textContent("#ir h3");
    if (irHead !== `IR (${comma(want.ir.length)} lines)`) fail(`IR heading '${irHead}', snabb auditlog lists ${want.ir.length} lines`);
    const irShown = await page.$$eval("#ir .line", (ls) => ls.map((l) => l.textContent));
    if (JSON.stringify(irShown) !== JSON.stringify(want.ir.slice(0, irShown.length)) || irShown.length === 0) {
      fail(`trace ${hottest}'s IR differs from snabb auditlog's:\n${irShown.slice(0, 5).join("\n")}\nagainst\n${want.ir.slice(0, 5).join("\n")}`);
    }

    // The bytecode beside its source lines: those the auditlog records the trace went through.
    const json = JSON.parse(execFileSync(snabb, ["auditlog", dir + "/audit.log", "--trace", String(hottest), "--all", "--json"], {encoding: "utf8"}));
    const recorded = new Set(json.traces.find((x) => x.number === hottest).lines.map((l) => `${l.source}:${l.line}`));
    const bcLines = await page.$$eval("#bytecode .line", (ls) => ls.map((l) => l.dataset.line).filter((x) => x));
    if (bcLines.length === 0) fail(`trace ${hottest}'s bytecode shows no source line`);
    for (const l of bcLines) if (!recorded.has(l)) fail(`bytecode at ${l}, a line trace ${hottest} did not record (${[...recorded]})`);
    if (bcLines.length === (await page.$$eval("#bytecode .line", (ls) => ls.length)) && new Set(bcLines).size !== recorded.size) {
      fail(`the bytecode shows lines ${[...new Set(bcLines)]}, the trace recorded ${[...recorded]}`);
    }

    // A guard in the IR, clicked: the machine code that leaves by its snapshot's exit, as the
    // listing has it (jumps marked ->N), is what the page relates it to.
    let snap = null, guard = null;
    for (let i = 0; i < irShown.length && guard === null; i++) {
      const m = irShown[i].match(/SNAP\s+#(\d+)/);
      if (m) snap = Number(m[1]);
      else if (irShown[i][5] === ">" && snap !== null && want.mcode.some((l) => l.endsWith("\t->" + snap))) guard = i;
    }
    if (guard === null) fail(`trace ${hottest} has no guard whose exit its machine code jumps to`);
    await page.click(`#ir .line[data-index="${guard}"]`);
    const wantJumps = want.mcode.filter((l) => l.endsWith("\t->" + snap)).map((l) => l.split(/\s+/)[0]);
    const jumps = await page.$$eval("#xref-links .xref-mcode", (bs) => bs.map((b) => b.textContent));
    if (JSON.stringify(jumps) !== JSON.stringify(wantJumps)) fail(`IR ${irShown[guard]}: machine code ${jumps}, the listing jumps to exit ${snap} at ${wantJumps}`);
    const related = await page.$$eval("#mcode .line.related", (ls) => ls.map((l) => l.dataset.address));
    if (related.length === 0 || related.some((a) => !wantJumps.includes(a))) fail(`highlighted machine code ${related}, want ${wantJumps}`);
    // The IR lines of that exit, as the listing has them: its SNAP line and the guards after it.
    const exitLines = [];
    let inSnap = null;
    for (const l of irShown) {
      const m = l.match(/SNAP\s+#(\d+)/);
      if (m) inSnap = Number(m[1]);
      if ((m && inSnap === snap) || (!m && l[5] === ">" && inSnap === snap)) exitLines.push(l);
    }
    const irRelated = await page.$$eval("#ir .line.related", (ls) => ls.map((l) => l.textContent));
    const wantRelated = exitLines.filter((l) => l !== irShown[guard]);
    if (JSON.stringify(irRelated) !== JSON.stringify(wantRelated)) fail(`IR related to '${irShown[guard]}': ${JSON.stringify(irRelated)}, want ${JSON.stringify(wantRelated)}`);
    // And back, with the keyboard: the jump, reached from the cross-reference and selected, relates
    // exactly the exit's snapshot and guards.
    await page.click(`#xref-links .xref-mcode`);
    await page.keyboard.press("Enter");
    const back = await page.$$eval("#ir .line.related", (ls) => ls.map((l) => l.textContent));
    if (JSON.stringify(back) !== JSON.stringify(exitLines)) fail(`the exit jump relates ${JSON.stringify(back)}, want ${JSON.stringify(exitLines)}`);
    if (errors.length) fail("page errors: " + errors.join("; "));

    // Outside the API: refused, whatever the path or method.
    for (const [method, path, status] of [["GET", "/inspect/../../etc/passwd", 404], ["GET", "/etc/passwd", 404],
      ["GET", "/inspect/index.html.bak", 404], ["GET", "/config", 404], ["POST", "/", 405], ["GET", "/inspect/api/trace/999999", 404], ["POST", "/inspect/api/apps", 405],
      ["DELETE", "/inspect/", 405]]) {
      const res = await raw(method, path);
      let body = {};
      try { body = JSON.parse(res.body); } catch (e) { /* checked below */ }
      if (res.status !== status || !body.error) fail(`${method} ${path}: ${res.status} ${res.body}, want ${status} with an error`);
    }
    console.log(`inspect_check: OK (apps ${apps.map((a) => a.name).join(", ")}; trace ${hottest}, ${total} samples; guard at exit ${snap})`);
  } finally {
    await browser.close();
  }
})().catch((e) => fail(e.stack || String(e)));
