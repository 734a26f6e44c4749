-- programs.bench.report.html_report: the report `snabb bench ... --html FILE` writes, one HTML file
-- that needs no network. Header and tables are written here as escaped HTML, so they read without
-- JavaScript; the charts are drawn by the inlined Chart.js from the result, embedded as JSON.
-- The function under test comes first; the harness bench adds (bench_source, bench_sink) is shown
-- apart, as its replay cost would otherwise dominate every chart.
local json = require("dkjson")
local lib = require("core.lib")
local chartjs = require("programs.bench.report.chartjs")

local M = {}

local entities = {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;"}

-- Text (app names, file paths) as HTML, safe in element content and quoted attributes.
local function esc (s)
   return (tostring(s):gsub("[&<>\"']", entities))
end

local function finite (x)
   return type(x) == "number" and x == x and x > -math.huge and x < math.huge
end

-- 1234567 -> "1,234,567"; a missing or non-finite value -> "–".
local function int (x)
   return finite(x) and lib.comma_value(math.floor(x + 0.5)) or "–"
end

local function fixed (x, decimals)
   return finite(x) and ("%." .. decimals .. "f"):format(x) or "–"
end

-- "10.50 Mpps", or just "–" when the figure is missing.
local function measure (x, decimals, unit)
   return finite(x) and fixed(x, decimals) .. " " .. unit or "–"
end

local function percent (fraction)
   return finite(fraction) and ("%.1f%%"):format(100 * fraction) or "–"
end

-- The harness apps (results from before `harness` was recorded: by name).
local function is_harness (a)
   if a.harness ~= nil then return a.harness == true end
   return a.name == "bench_source" or a.name == "bench_sink"
end

-- The result's apps split into the function under test and the harness, each in its order.
local function split_apps (r)
   local fn, harness = {}, {}
   for _, a in ipairs(r.apps or {}) do
      local t = is_harness(a) and harness or fn
      t[#t+1] = a
   end
   return fn, harness
end

local css = [[
body { margin: 0; background: #f6f7f9; color: #1f2328;
       font: 14px/1.45 system-ui, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 0 0 10px; }
h1 code { font-size: 20px; }
code, td.name { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
header { margin-bottom: 16px; }
.meta { color: #57606a; margin: 0; }
.warning { color: #cf222e; font-weight: 600; margin: 0 0 12px; }
.meta code { font-size: 12px; }
pre.command { margin: 6px 0 0; white-space: pre-wrap; word-break: break-all; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px;
         margin-bottom: 16px; }
.card, .panel { background: #fff; border: 1px solid #d8dee4; border-radius: 6px; }
.card { padding: 10px 12px; }
.card .label { color: #57606a; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .sub { color: #57606a; font-size: 12px; }
.card.bad .value { color: #cf222e; }
.panel { padding: 14px 16px; margin-bottom: 16px; overflow-x: auto; }
.panel p.meta { margin-top: 8px; }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.chart { position: relative; height: 300px; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 5px 8px; border-bottom: 1px solid #eaeef2; text-align: left; white-space: nowrap; }
th { font-size: 12px; color: #57606a; font-weight: 600; }
.n { text-align: right; font-variant-numeric: tabular-nums; }
td.share b { display: inline-block; width: 48px; text-align: right; font-weight: normal; }
td.share span { display: inline-block; height: 10px; margin-left: 8px; background: #4e79a7; }
table.compact { width: auto; }
table.compact th, table.compact td { padding: 5px 8px 5px 40px; }
tr.drop td { background: #ffebe9; }
tr.drop td.txdrop { color: #cf222e; font-weight: 700; }
tr.failed td { background: #ffebe9; }
tr.failed td.errors { color: #cf222e; font-weight: 700; }
pre.error { margin: 4px 0 12px; white-space: pre-wrap; font-size: 12px; }
.empty { color: #57606a; font-style: italic; margin: 0; }
]]

-- Builds the charts from the JSON block; Chart.js draws labels on the canvas, never as HTML. Each
-- chart is one of the snippets in `chart_scripts`, run in order inside one function that has
-- `data` (the result), `num`, `axisTitle` and `isHarness` in scope.
local script_head = [[
(function () {
   "use strict";
   var data = JSON.parse(document.getElementById("bench-data").textContent);
   if (typeof Chart === "undefined") return;
   Chart.defaults.animation = false; // a headless screenshot must see finished charts
   Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
   Chart.defaults.color = "#1f2328";
   var num = function (x) { return typeof x === "number" ? x : null; };
   var axisTitle = function (text) { return {display: true, text: text}; };
   var isHarness = function (a) {
      return a.harness === undefined ? a.name === "bench_source" || a.name === "bench_sink" : a.harness === true;
   };
]]
local script_tail = "})();\n"

local chart_scripts = {
-- Cycles per packet of the function's apps only: the harness has a table of its own.
[[
   var apps = (data.apps || []).filter(function (a) { return !isHarness(a); });
   var bar = document.getElementById("cycles-chart");
   if (bar && apps.length) {
      bar.parentNode.style.height = Math.max(300, 60 + 28 * apps.length) + "px";
      new Chart(bar, {
         type: "bar",
         data: {labels: apps.map(function (a) { return String(a.name); }),
                datasets: [{label: "cycles/packet", backgroundColor: "#4e79a7", maxBarThickness: 32,
                            data: apps.map(function (a) { return num(a.cycles_per_packet); })}]},
         options: {indexAxis: "y", maintainAspectRatio: false, plugins: {legend: {display: false}},
                   scales: {x: {beginAtZero: true, title: axisTitle("cycles per packet")}}}
      });
   }
]],
-- Each sample is the mean rate over the interval that ends at its t (the first starts at 0): drawn
-- as steps over those intervals, with no interpolation between samples, on an x axis that ends with
-- the run. "Mpps in" is dashed and drawn over "Mpps out", so it shows where the two are equal.
[[
   var timeline = data.timeline || [], line = document.getElementById("throughput-chart");
   if (line && timeline.length) {
      var series = function (label, key, axis, order, style) {
         var points = timeline.map(function (s) { return {x: s.t, y: num(s[key])}; });
         points.unshift({x: 0, y: points[0].y});
         style.label = label; style.yAxisID = axis; style.order = order;
         style.stepped = "after"; style.tension = 0; style.pointRadius = 0; style.data = points;
         return style;
      };
      var end = num(data.seconds);
      new Chart(line, {
         type: "line",
         data: {datasets: [
            series("Mpps in", "input_mpps", "mpps", 1,
                   {borderColor: "#f28e2b", backgroundColor: "#f28e2b", borderWidth: 2, borderDash: [6, 4]}),
            series("Mpps out", "output_mpps", "mpps", 2,
                   {borderColor: "#1d4e89", backgroundColor: "#1d4e89", borderWidth: 3}),
            series("Gbit/s out (wire)", "output_gbps_wire", "gbps", 3,
                   {borderColor: "#e15759", backgroundColor: "rgba(225, 87, 89, 0.12)",
                    borderWidth: 1, fill: "origin"})]},
         options: {maintainAspectRatio: false, interaction: {mode: "index", intersect: false},
                   plugins: {legend: {labels: {sort: function (a, b) { return a.datasetIndex - b.datasetIndex; }}}},
                   scales: {x: {type: "linear", min: 0, max: end !== null ? end : undefined,
                                title: axisTitle("seconds since start")},
                            mpps: {position: "left", beginAtZero: true, title: axisTitle("Mpps")},
                            gbps: {position: "right", beginAtZero: true, title: axisTitle("Gbit/s"),
                                   grid: {drawOnChartArea: false}}}}
      });
   }
]],
}

local function card (out, label, value, sub, bad)
   out[#out+1] = ('<div class="card%s"><div class="label">%s</div><div class="value">%s</div>'
      .. '<div class="sub">%s</div></div>\n'):format(bad and " bad" or "", label, value, sub or "&nbsp;")
end

-- columns: {heading, class}; rows: lists of already-escaped cells; row_class(i) -> class or nil.
local function table_html (out, columns, rows, row_class, class)
   out[#out+1] = class and ('<table class="%s"><thead><tr>'):format(class) or "<table><thead><tr>"
   for _, c in ipairs(columns) do out[#out+1] = ('<th class="%s">%s</th>'):format(c[2] or "", c[1]) end
   out[#out+1] = "</tr></thead><tbody>\n"
   for i, cells in ipairs(rows) do
      local tr_class = row_class and row_class(i)
      out[#out+1] = tr_class and ('<tr class="%s">'):format(tr_class) or "<tr>"
      for j, cell in ipairs(cells) do
         out[#out+1] = ('<td class="%s">%s</td>'):format(columns[j][2] or "", cell)
      end
      out[#out+1] = "</tr>\n"
   end
   out[#out+1] = "</tbody></table>\n"
end

-- What was run, where and how: the offered load asked for, snabb's version, the host's CPU and
-- the command line.
local function header (out, r)
   out[#out+1] = ("<header><h1>snabb bench: <code>%s</code></h1>\n"):format(esc(r.config or "?"))
   local meta = {}
   if r.pcap then meta[#meta+1] = ("capture <code>%s</code>"):format(esc(r.pcap)) end
   if r.date then meta[#meta+1] = esc(r.date) end
   local requested = r.requested_rate
   if type(requested) == "number" then requested = requested .. " Mpps" end -- (--rate 5: Mpps)
   meta[#meta+1] = "requested rate " .. (requested and ("<code>%s</code>"):format(esc(requested)) or "unthrottled")
   if r.snabb_version then meta[#meta+1] = "snabb " .. esc(r.snabb_version) end
   if r.cpu then meta[#meta+1] = "CPU " .. esc(r.cpu) end
   if r.workers then -- (a config with workers: programs/bench/workers.lua)
      local names = {}
      for i, w in ipairs(r.workers) do names[i] = esc(w.name) .. (w.cpu and " on CPU " .. w.cpu or "") end
      meta[#meta+1] = "workers " .. table.concat(names, ", ")
   end
   out[#out+1] = ('<p class="meta">%s</p>\n'):format(table.concat(meta, " · "))
   if r.command then out[#out+1] = ('<pre class="meta command"><code>%s</code></pre>\n'):format(esc(r.command)) end
   out[#out+1] = "</header>\n"
end

-- The figures that add up: packets in = out + dropped by links + queued + lost in the graph.
-- (Six cards fill a row of the page.)
local function cards (out, r)
   local packets, bytes, rate = r.packets or {}, r.bytes or {}, r.rate or {}
   local function of_input (n)
      return finite(n) and finite(packets.input) and packets.input > 0
         and percent(n / packets.input) .. " of input" or nil
   end
   out[#out+1] = '<div class="cards">\n'
   card(out, "Input", measure(rate.input_mpps, 2, "Mpps"),
        ("%s packets<br>%s bytes"):format(int(packets.input), int(bytes.input)))
   card(out, "Output", measure(rate.output_mpps, 2, "Mpps"),
        ("%s packets<br>%s bytes"):format(int(packets.output), int(bytes.output)))
   card(out, "Output, wire", measure(rate.output_gbps_wire, 2, "Gbit/s"),
        "L2: " .. measure(rate.output_gbps_l2, 2, "Gbit/s"))
   card(out, "Dropped by links", int(packets.dropped),
        ("%s<br>still queued: %s"):format(of_input(packets.dropped) or "&nbsp;", int(packets.queued)),
        finite(packets.dropped) and packets.dropped > 0)
   card(out, "Lost in the graph", int(packets.lost), of_input(packets.lost),
        finite(packets.lost) and packets.lost ~= 0)
   card(out, "Duration", measure(r.seconds, 2, "s"))
   out[#out+1] = "</div>\n"
end

-- A titled panel: body() writes its content, or `empty` says there is none.
local function panel (out, title, has_content, empty, body)
   out[#out+1] = ('<section class="panel"><h2>%s</h2>\n'):format(title)
   if has_content then body() else out[#out+1] = ('<p class="empty">%s</p>'):format(empty) end
   out[#out+1] = "</section>\n"
end

local function charts (out, r)
   local function chart (title, id, has_data, none)
      panel(out, title, has_data, none, function ()
         out[#out+1] = ('<div class="chart"><canvas id="%s"></canvas></div>'):format(id)
      end)
   end
   out[#out+1] = '<div class="row">\n'
   local fn = split_apps(r)
   chart("Cycles per packet: the function under test", "cycles-chart", #fn > 0, "no apps")
   chart("Throughput over time", "throughput-chart", #(r.timeline or {}) > 0, "no samples")
   out[#out+1] = "</div>\n"
end

-- One table of apps (the function's, or the harness's); share is of the engine's whole time.
-- `note` (HTML) follows the table.
local function apps_table (out, title, apps, empty, note)
   panel(out, title, #apps > 0, empty, function ()
      local rows = {}
      for i, a in ipairs(apps) do
         local width = finite(a.share) and math.max(0, math.min(1, a.share)) * 80 or 0
         rows[i] = {esc(a.name or "?"), esc(a.class or ""), int(a.packets_in), int(a.packets_out),
                    int(a.freed), fixed(a.cycles_per_packet, 1),
                    ('<b>%s</b><span style="width:%.0fpx"></span>'):format(percent(a.share), width),
                    int(a.errors)}
      end
      table_html(out, {{"app", "name"}, {"class"}, {"packets in", "n"}, {"packets out", "n"},
                       {"freed (net)", "n"}, {"cycles/packet", "n"}, {"share of engine time", "share"},
                       {"errors", "n errors"}}, rows,
                 function (i) local e = apps[i].errors return finite(e) and e > 0 and "failed" or nil end)
      out[#out+1] = note
   end)
end

-- Where the packets lost inside the graph went, when some were (HTML, or "").
local function lost_note (r, fn)
   local p = r.packets or {}
   if not (finite(p.lost) and p.lost ~= 0) then return "" end
   local parts = {}
   for _, a in ipairs(fn) do
      if finite(a.freed) and a.freed ~= 0 then
         parts[#parts+1] = ("%s <code>%s</code> %s"):format(a.freed > 0 and "freed by" or "made by",
                                                           esc(a.name), int(math.abs(a.freed)))
      end
   end
   if finite(p.lost_held) and p.lost_held ~= 0 then parts[#parts+1] = "held in apps " .. int(p.lost_held) end
   return ('<p class="meta">Lost in the graph: %s (%s).</p>\n'):format(int(p.lost), table.concat(parts, ", "))
end

local function failures_panel (out, r)
   local failures = r.failures or {}
   if #failures == 0 then return end
   panel(out, "Apps that failed", true, "", function ()
      for _, f in ipairs(failures) do
         out[#out+1] = ('<p><code>%s</code>: %s error%s; the first:</p><pre class="error">%s</pre>\n'):format(
            esc(f.name or "?"), int(f.errors), f.errors == 1 and "" or "s", esc(f.message or "?"))
      end
   end)
end

local function links_table (out, r)
   local links = r.links or {}
   panel(out, "Links", #links > 0, "no links", function ()
      local rows = {}
      for i, l in ipairs(links) do
         rows[i] = {esc(l.link or "?"), int(l.txpackets), int(l.rxpackets), int(l.txdrop), int(l.queued)}
      end
      table_html(out, {{"link", "name"}, {"txpackets", "n"}, {"rxpackets", "n"}, {"txdrop", "n txdrop"},
                       {"queued", "n"}}, rows,
                 function (i) local d = links[i].txdrop return finite(d) and d > 0 and "drop" or nil end)
   end)
end

local function latency_table (out, r)
   local l = r.breath_latency_us
   panel(out, "Breath latency (µs)", l and next(l) ~= nil, "no samples", function ()
      local keys = {"p50", "p90", "p99", "p999", "max"}
      local columns, cells = {}, {}
      for i, k in ipairs(keys) do
         columns[i] = {k == "p999" and "p99.9" or k, "n"}
         cells[i] = fixed(l[k], 1)
      end
      table_html(out, columns, {cells}, nil, "compact")
   end)
end

-- Latency per packet (apps.basic.latency): percentiles, packets timed and not, and a histogram
-- of the sink's buckets (12.5% wide), drawn by latency_script.
local latency_script = [[
(function () {
   "use strict";
   var l = JSON.parse(document.getElementById("bench-data").textContent).latency_us;
   var canvas = document.getElementById("latency-chart");
   if (typeof Chart === "undefined" || !canvas || !l || !l.histogram || !l.histogram.length) return;
   var label = function (x) { return x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0); };
   new Chart(canvas, {
      type: "bar",
      data: {labels: l.histogram.map(function (b) { return label(b.from) + "–" + label(b.to); }),
             datasets: [{label: "packets", backgroundColor: "#4e79a7", barPercentage: 1,
                         categoryPercentage: 1, data: l.histogram.map(function (b) { return b.count; })}]},
      options: {maintainAspectRatio: false, plugins: {legend: {display: false}},
                scales: {x: {title: {display: true, text: "latency (µs), buckets 12.5% wide"}},
                         // From 0.5, so that a bucket of one packet shows; ticks at powers of ten.
                         y: {type: "logarithmic", min: 0.5, title: {display: true, text: "packets"},
                             ticks: {callback: function (v) {
                                var e = Math.log10(v);
                                return e >= 0 && Math.abs(e - Math.round(e)) < 1e-9 ? v.toLocaleString("en") : "";
                             }}}}}
   });
})();
]]

local function packet_latency (out, r)
   local l = r.latency_us
   local empty = l and "no stamped packet reached the sink" or "not measured (--no-latency)"
   panel(out, "Packet latency (µs), from the source's transmit to the sink's receive", l and l.p50, empty,
         function ()
      local columns, cells = {}, {}
      for i, k in ipairs({"p50", "p90", "p99", "p999", "max"}) do
         columns[i], cells[i] = {k == "p999" and "p99.9" or k, "n"}, fixed(l[k], 1)
      end
      columns[6], cells[6] = {"packets timed", "n"}, int(l.stamped)
      columns[7], cells[7] = {"packets out untimed", "n"}, int(l.unstamped)
      table_html(out, columns, {cells}, nil, "compact")
      out[#out+1] = '<p class="meta">Link queueing, the breaths between and every app\'s processing on '
         .. "the way; not time on a NIC or wire. Packets made inside the graph carry no stamp "
         .. "(untimed).</p>\n"
      out[#out+1] = '<div class="chart"><canvas id="latency-chart"></canvas></div>'
   end)
end

-- The result as JSON for a <script type="application/json"> block: no "<" at all, so neither
-- "</script" nor "<!--" can occur. (dkjson writes numbers with tostring: 14 significant digits.)
local function data_json (r)
   local text, err = json.encode(r)
   if not text then error("html_report: result can't be encoded as JSON: " .. tostring(err), 2) end
   return (text:gsub("<", "\\u003c"))
end

-- The offered load (with --rate): requested and achieved, and the run's warnings.
local function offered_load (out, r)
   local req, got, warnings = (r.rate or {}).requested, (r.rate or {}).achieved, r.warnings or {}
   if req and got then
      local function show (x, unit)
         return unit == "pps" and measure(x and x / 1e6, 4, "Mpps") or measure(x and x / 1e9, 4, "Gbit/s")
      end
      out[#out+1] = ('<p class="meta">rate: requested %s, achieved %s (%s on the wire), %s</p>\n'):format(
         show(req[req.unit], req.unit), show(got.pps, "pps"), show(got.bps, "bps"),
         percent(finite(got[req.unit]) and got[req.unit] / req[req.unit]))
   end
   for _, w in ipairs(warnings) do out[#out+1] = ('<p class="warning">warning: %s</p>\n'):format(esc(w)) end
end

function M.render (result)
   local r = result
   local out = {
      '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
      ("<title>snabb bench: %s</title>\n"):format(esc(r.config or "?")),
      "<style>\n", css, "</style>\n</head>\n<body>\n<main>\n",
   }
   local fn, harness = split_apps(r)
   header(out, r)
   offered_load(out, r)
   cards(out, r)
   failures_panel(out, r)
   charts(out, r)
   apps_table(out, "The function under test", fn, "no apps", lost_note(r, fn))
   apps_table(out, "Harness: replay and sink (added by snabb bench)", harness, "no harness apps")
   links_table(out, r)
   latency_table(out, r)
   packet_latency(out, r)
   out[#out+1] = "</main>\n<script>\n"
   out[#out+1] = chartjs -- made safe to inline by wrap_js.lua
   out[#out+1] = '\n</script>\n<script type="application/json" id="bench-data">'
   out[#out+1] = data_json(r)
   out[#out+1] = "</script>\n<script>\n"
   out[#out+1] = script_head .. table.concat(chart_scripts) .. script_tail
   out[#out+1] = latency_script
   out[#out+1] = "</script>\n</body>\n</html>\n"
   return table.concat(out)
end

-- A plausible result (used by the selftest; handy for looking at the report's layout): a two-app
-- function that loses 42,210 packets on a full link and 1,000 inside app 'nat<b>&'.
function M.sample_result ()
   local seconds, timeline = 2.01, {}
   for i = 1, 20 do
      local mpps = 10.5 + 0.6 * math.sin(i / 3)
      timeline[i] = {t = i / 10, input_mpps = mpps, output_mpps = mpps * 0.998,
                     output_gbps_wire = mpps * 0.998 * (64 + 20) * 8 / 1e3}
   end
   timeline[21] = {t = seconds, input_mpps = 10.1, output_mpps = 10.1, output_gbps_wire = 6.8}
   local input, output = 21105000, 21061790
   local function app (name, class, packets_in, packets_out, freed, cycles, share, harness, errors)
      return {name = name, class = class, packets_in = packets_in, packets_out = packets_out, freed = freed,
              cycles = cycles, cycles_per_packet = cycles / math.max(packets_in, packets_out), share = share,
              harness = harness, errors = errors or 0}
   end
   local function link (spec, tx, rx, drop)
      return {link = spec, txpackets = tx, rxpackets = rx, txdrop = drop, queued = 0}
   end
   return {
      config = "examples/forward.lua", pcap = "examples/imix.pcap", date = "2026-11-25 15:30:00",
      seconds = seconds, requested_rate = "11Mpps", snabb_version = "0.1.0",
      cpu = "AMD EPYC 7B13 (2 CPUs)",
      command = "snabb bench examples/forward.lua --pcap examples/imix.pcap --rate 11Mpps --html r.html",
      packets = {input = input, output = output, dropped = 42210, queued = 0, lost = 1000,
                 lost_freed = 1000, lost_held = 0},
      bytes = {input = 1350720000, output = 1347954560},
      rate = {input_mpps = input / seconds / 1e6, output_mpps = output / seconds / 1e6,
              output_gbps_wire = output * 84 * 8 / seconds / 1e9,
              output_gbps_l2 = 1347954560 * 8 / seconds / 1e9},
      apps = {
         app("fwd", "examples.forward.Forward", input, input, 0, 4.85e8, 0.43, false),
         app("nat<b>&", "apps.nat.NAT", input - 42210, output, 1000, 2.1e8, 0.19, false, 2),
         app("bench_source", "pcap.pcap.Replay", 0, input, -input, 3.17e8, 0.28, true),
         app("bench_sink", "basic.basic_apps.Sink", output, 0, output, 1.1e8, 0.1, true),
      },
      links = {
         link("bench_source.output -> fwd.input", input, input, 0),
         link("fwd.output -> nat<b>&.input", input, input - 42210, 42210),
         link("nat<b>&.output -> bench_sink.input", output, output, 0),
      },
      failures = {{name = "nat<b>&", errors = 2, message = "app 'nat<b>&' failed in push: nat.lua:5: bad <packet>"}},
      breath_latency_us = {p50 = 3.1, p90 = 4.0, p99 = 9.5, p999 = 20.1, max = 130.2},
      latency_us = {p50 = 4.2, p90 = 6.1, p99 = 12.4, p999 = 25.3, max = 140.9, stamped = 21062790,
                    unstamped = 0, histogram = {{from = 3.5, to = 4.0, count = 9000000},
                                                {from = 4.0, to = 4.5, count = 12062780},
                                                {from = 128, to = 144, count = 10}}},
      timeline = timeline,
   }
end

-- Equal, numbers to the 14 significant digits dkjson writes.
local function same (a, b)
   if type(a) == "number" and type(b) == "number" then
      return a == b or math.abs(a - b) <= 1e-13 * math.max(math.abs(a), math.abs(b))
   elseif type(a) ~= "table" or type(b) ~= "table" then
      return a == b
   end
   for k, v in pairs(a) do if not same(v, b[k]) then return false end end
   for k in pairs(b) do if a[k] == nil then return false end end
   return true
end

local function count (s, pattern)
   return select(2, s:gsub(pattern, ""))
end

function M.selftest ()
   print("selftest: programs.bench.report.html_report")
   local sample = M.sample_result()
   local doc = M.render(sample)
   assert(doc:match("^<!DOCTYPE html>") and doc:match("</html>\n$"), "incomplete document")
   assert(doc:find(chartjs, 1, true) and chartjs:find("Chart.js v3.9.1", 1, true), "Chart.js not inlined")
   assert(count(doc, "<[Ss][Cc][Rr][Ii][Pp][Tt][ >]") == 3 and count(doc, "</[Ss][Cc][Rr][Ii][Pp][Tt]") == 3,
          "a script element ends early")
   assert(doc:find("<td class=\"name\">nat&lt;b&gt;&amp;</td>", 1, true), "app name not escaped")
   assert(doc:find("fwd.output -&gt; nat&lt;b&gt;&amp;.input", 1, true), "link name not escaped")
   assert(not doc:find("nat<b>", 1, true), "raw name in the document")
   assert(doc:find('<tr class="drop">', 1, true), "txdrop not highlighted")
   assert(doc:find('<canvas id="latency-chart">', 1, true) and doc:find("<td class=\"n\">25.3</td>", 1, true),
          "no packet latency")
   local data = doc:match('<script type="application/json" id="bench%-data">(.-)</script>')
   assert(data and data:find("nat\\u003cb>&", 1, true) and data:find('"bench_sink"', 1, true), "no JSON data")
   local decoded, _, err = json.decode(data)
   assert(decoded, err)
   assert(same(decoded, sample), "JSON data does not decode to the result")
   -- The function under test first, then the harness apart; what was run, where and how.
   local function at (text) return assert(doc:find(text, 1, true), text) end
   assert(at('<td class="name">fwd</td>') < at("<h2>Harness: replay and sink")
          and at("<h2>Harness: replay and sink") < at('<td class="name">bench_source</td>'), "harness apart")
   assert(at("<h2>The function under test</h2>") < at("<h2>Harness"), "function first")
   at("requested rate <code>11Mpps</code>")
   at("snabb 0.1.0")
   at("CPU AMD EPYC 7B13 (2 CPUs)")
   at('<pre class="meta command"><code>snabb bench examples/forward.lua --pcap examples/imix.pcap --rate 11Mpps')
   assert(doc:find('<div class="label">Lost in the graph</div><div class="value">1,000</div>', 1, true), "lost card")
   at("freed by <code>nat&lt;b&gt;&amp;</code> 1,000")
   at('<tr class="failed">')
   at("nat.lua:5: bad &lt;packet&gt;</pre>")
   -- The charts: steps over each sample's interval, never a curve; the x axis ends at the run's end.
   assert(not doc:find("tension = 0.2", 1, true) and doc:find('style.stepped = "after"; style.tension = 0', 1, true))
   assert(doc:find("max: end !== null ? end : undefined", 1, true))

   -- A run too short for any sample, with nothing measured: still a whole document.
   local empty = {config = "x.lua", seconds = 0.01, packets = {input = 0, output = 0, dropped = 0},
                  bytes = {}, rate = {}, apps = {}, links = {}, timeline = {}}
   doc = M.render(empty)
   assert(doc:match("</html>\n$") and doc:find("no samples", 1, true) and doc:find("no apps", 1, true))
   assert(doc:find('<script type="application/json" id="bench-data">', 1, true))
   assert(same(json.decode(doc:match('id="bench%-data">(.-)</script>')), empty))
   -- Packet latency not measured (--no-latency), or measured with no packet timed.
   assert(doc:find("not measured (--no-latency)", 1, true))
   empty.latency_us = {stamped = 0, unstamped = 7, histogram = {}}
   assert(M.render(empty):find("no stamped packet reached the sink", 1, true))
   print("selftest: programs.bench.report.html_report ok")
end

return M
