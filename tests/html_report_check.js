// node tests/html_report_check.js REPORT.html: opens a `snabb bench --html` report in headless
// Chromium (Debian's, driven by playwright-core) and checks what a reader sees against the result
// embedded in the page: the function under test first and the harness apart (not in the cycles
// chart); "Mpps in" drawn over "Mpps out" and visible where they are equal; steps, no curves, each
// sample's value as measured; the x axis ending with the run; rate, version, CPU and command shown.
"use strict";
const {chromium} = require("playwright-core");
const path = require("path");

const fail = (message) => { console.error("FAIL: " + message); process.exit(1); };

(async () => {
  const report = process.argv[2];
  if (!report) fail("usage: node html_report_check.js REPORT.html");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage({viewport: {width: 1200, height: 1600}});
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("request", (r) => { if (!r.url().startsWith("file:")) errors.push("fetches " + r.url()); });
    await page.goto("file://" + path.resolve(report));
    const seen = await page.evaluate(() => {
      const data = JSON.parse(document.getElementById("bench-data").textContent);
      const cycles = Chart.getChart("cycles-chart"), line = Chart.getChart("throughput-chart");
      const byLabel = {};
      for (const d of line.data.datasets) byLabel[d.label] = d;
      // Pixels of "Mpps in"'s colour inside the plot area of the throughput chart.
      const canvas = line.canvas, area = line.chartArea, ratio = line.currentDevicePixelRatio;
      const [r, g, b] = [242, 142, 43];
      const pixels = canvas.getContext("2d").getImageData(
        area.left * ratio, area.top * ratio, (area.right - area.left) * ratio, (area.bottom - area.top) * ratio).data;
      let inPixels = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        if (Math.abs(pixels[i] - r) < 30 && Math.abs(pixels[i + 1] - g) < 30 && Math.abs(pixels[i + 2] - b) < 30) inPixels++;
      }
      const headings = [...document.querySelectorAll("h2")].map((h) => h.textContent);
      return {
        data, inPixels, headings, header: document.querySelector("header").textContent,
        cyclesLabels: cycles.data.labels,
        xMin: line.scales.x.min, xMax: line.scales.x.max,
        datasets: line.data.datasets.map((d) => ({label: d.label, order: d.order, stepped: d.stepped,
          tension: line.getDatasetMeta(line.data.datasets.indexOf(d)).dataset.options.tension,
          cubic: d.cubicInterpolationMode, dash: d.borderDash, points: d.data})),
        inOrder: byLabel["Mpps in"].order, outOrder: byLabel["Mpps out"].order,
        harnessRows: [...document.querySelectorAll("section")].filter((s) => /^Harness/.test(s.querySelector("h2").textContent))
          .map((s) => [...s.querySelectorAll("td.name")].map((td) => td.textContent))[0],
      };
    });
    if (errors.length) fail("page errors: " + errors.join("; "));
    const d = seen.data;
    const isHarness = (a) => a.harness === true;
    const fn = d.apps.filter((a) => !isHarness(a)).map((a) => a.name);
    const harness = d.apps.filter(isHarness).map((a) => a.name);
    // The function first, the harness apart.
    if (JSON.stringify(seen.cyclesLabels) !== JSON.stringify(fn)) fail("cycles chart shows " + seen.cyclesLabels + ", not " + fn);
    if (JSON.stringify(harness.sort()) !== JSON.stringify(["bench_sink", "bench_source"])) fail("harness apps " + harness);
    if (JSON.stringify(seen.harnessRows.slice().sort()) !== JSON.stringify(harness)) fail("harness table " + seen.harnessRows);
    const fnAt = seen.headings.indexOf("The function under test");
    const harnessAt = seen.headings.findIndex((h) => /^Harness/.test(h));
    if (fnAt < 0 || harnessAt < fnAt) fail("headings " + seen.headings);
    // "Mpps in" drawn over "Mpps out", dashed, and visible.
    if (!(seen.inOrder < seen.outOrder)) fail("Mpps in is drawn under Mpps out");
    const inSet = seen.datasets.find((s) => s.label === "Mpps in");
    if (!(inSet.dash && inSet.dash.length)) fail("Mpps in is not dashed");
    if (seen.inPixels < 200) fail("Mpps in hardly visible: " + seen.inPixels + " pixels of its colour");
    // Steps, no curves; every point is a sample as measured (plus the first interval's start at 0).
    for (const s of seen.datasets) {
      if (s.stepped !== "after" || s.tension !== 0 || s.cubic === "monotone") fail(s.label + " is smoothed");
      const key = {"Mpps in": "input_mpps", "Mpps out": "output_mpps", "Gbit/s out (wire)": "output_gbps_wire"}[s.label];
      if (s.points.length !== d.timeline.length + 1 || s.points[0].x !== 0) fail(s.label + ": points");
      d.timeline.forEach((t, i) => {
        if (s.points[i + 1].x !== t.t || s.points[i + 1].y !== t[key]) fail(s.label + ": point " + i + " is not the sample");
      });
    }
    // The x axis ends with the run.
    if (seen.xMin !== 0 || Math.abs(seen.xMax - d.seconds) > 1e-9) fail("x axis " + seen.xMin + ".." + seen.xMax + ", run " + d.seconds + " s");
    // What was run, where and how.
    for (const text of [d.requested_rate ? "requested rate " + d.requested_rate : "unthrottled", "snabb " + d.snabb_version,
                        "CPU " + d.cpu, d.command]) {
      if (!text || !seen.header.includes(text)) fail("header lacks '" + text + "': " + seen.header);
    }
    console.log(`html_report_check: ${fn.join(",")} then ${harness.join(",")}; ${d.timeline.length} samples to ${d.seconds.toFixed(3)} s; ` +
                `${seen.inPixels} pixels of Mpps in`);
  } finally {
    await browser.close();
  }
})().catch((e) => fail(e.stack || String(e)));
