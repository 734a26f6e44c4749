// What the browser tests of snabb inspect (tests/inspect*_check.js) share: the reader of a
// vmprofile zone file, written here from its layout in observe/vmprofile.h (independently of
// snabb's own reader, so the page's numbers are checked against the file), and a headless
// Chromium (Debian's, through playwright-core; tests/browser.sh exports NODE_PATH) with a page
// whose script errors are collected.
"use strict";
const {chromium} = require("playwright-core");
const fs = require("fs");

// The VM states in the order of the zone's columns (observe.vmprofile's states).
const STATES = ["loop", "head", "interp", "c", "gc", "exit", "record", "optimise", "assemble", "runtime"];

// A zone file, version 1: a 96-byte header (magic, version, states, max_trace, hz, zone[64],
// samples), then uint64 counts[max_trace + 1][states]. Returns {hz, samples, total = {state: n},
// traces = {trace: {state: n}}}; throws naming the file when it is not one.
function readZone(path) {
  const b = fs.readFileSync(path);
  if (b.toString("latin1", 0, 8) !== "SNABBVMP" || b.readUInt32LE(8) !== 1) throw new Error(path + ": not a vmprofile of version 1");
  const states = b.readUInt32LE(12), maxTrace = b.readUInt32LE(16);
  if (states !== STATES.length) throw new Error(path + ": " + states + " states, this test knows " + STATES.length);
  const zone = {hz: b.readUInt32LE(20), samples: Number(b.readBigUInt64LE(88)), total: {}, traces: {}};
  for (const s of STATES) zone.total[s] = 0;
  for (let t = 0; t <= maxTrace; t++) {
    for (let s = 0; s < states; s++) {
      const n = Number(b.readBigUInt64LE(96 + 8 * (t * states + s)));
      if (!n) continue;
      zone.total[STATES[s]] += n;
      zone.traces[t] = zone.traces[t] || {};
      zone.traces[t][STATES[s]] = n;
    }
  }
  return zone;
}

// Headless Chromium and one page of 1400x1000; errors: the page's uncaught exceptions and console
// errors, which a test fails on.
async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage({viewport: {width: 1400, height: 1000}});
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  return {browser, page, errors};
}

module.exports = {STATES, readZone, launch};
