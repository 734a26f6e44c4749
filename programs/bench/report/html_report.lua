-- programs.bench.report.html_report: the report `snabb bench ... --html FILE` writes, one HTML file
-- that needs no network. Header and tables are written here as escaped HTML, so they read without
-- JavaScript; the charts are drawn by the inlined Chart.js from the result, embedded as JSON.
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
   return finite(x) and lib.comma_value(x + 0.5) or "–"
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
.cards { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; margin-bottom: 16px; }
.card, .panel { background: #fff; border: 1px solid #d8dee4; border-radius: 6px; }
.card { padding: 10px 12px; }
.card .label { color: #57606a; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .sub { color: #57606a; font-size: 12px; }
.card.bad .value { color: #cf222e; }
.panel { padding: 14px 16px; margin-bottom: 16px; overflow-x: auto; }
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
.empty { color: #57606a; font-style: italic; margin: 0; }
]]

-- Builds the charts from the JSON block; Chart.js draws labels on the canvas, never as HTML.
local script = [[
(function () {
   "use strict";
   var data = JSON.parse(document.getElementById("bench-data").textContent);
   if (typeof Chart === "undefined") return;
   Chart.defaults.animation = false; // a headless screenshot must see finished charts
   Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
   Chart.defaults.color = "#1f2328";
   var num = function (x) { return typeof x === "number" ? x : null; };
   var axisTitle = function (text) { return {display: true, text: text}; };

   var apps = data.apps || [], bar = document.getElementById("cycles-chart");
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

   var timeline = data.timeline || [], line = document.getElementById("throughput-chart");
   if (line && timeline.length) {
      // In and out often coincide, and Gbit/s follows Mpps: a wide pale line under a thin dark
      // one, and an area for Gbit/s, keep all three visible.
      var series = function (label, key, axis, order, style) {
         style.label = label; style.yAxisID = axis; style.order = order; style.tension = 0.2;
         style.pointRadius = timeline.length > 1 ? 0 : 3;
         style.data = timeline.map(function (s) { return {x: s.t, y: num(s[key])}; });
         return style;
      };
      new Chart(line, {
         type: "line",
         data: {datasets: [
            series("Mpps in", "input_mpps", "mpps", 2,
                   {borderColor: "#a6c4e0", backgroundColor: "#a6c4e0", borderWidth: 6}),
            series("Mpps out", "output_mpps", "mpps", 1,
                   {borderColor: "#1d4e89", backgroundColor: "#1d4e89", borderWidth: 2}),
            series("Gbit/s out (wire)", "output_gbps_wire", "gbps", 3,
                   {borderColor: "#e15759", backgroundColor: "rgba(225, 87, 89, 0.12)",
                    borderWidth: 1, fill: "origin"})]},
         options: {maintainAspectRatio: false, interaction: {mode: "index", intersect: false},
                   plugins: {legend: {labels: {sort: function (a, b) { return a.datasetIndex - b.datasetIndex; }}}},
                   scales: {x: {type: "linear", min: 0, title: axisTitle("seconds since start")},
                            mpps: {position: "left", beginAtZero: true, title: axisTitle("Mpps")},
                            gbps: {position: "right", beginAtZero: true, title: axisTitle("Gbit/s"),
                                   grid: {drawOnChartArea: false}}}}
      });
   }
})();
]]

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
      local class = row_class and row_class(i)
      out[#out+1] = class and ('<tr class="%s">'):format(class) or "<tr>"
      for j, cell in ipairs(cells) do
         out[#out+1] = ('<td class="%s">%s</td>'):format(columns[j][2] or "", cell)
      end
      out[#out+1] = "</tr>\n"
   end
   out[#out+1] = "</tbody></table>\n"
end

local function header (out, r)
   local packets, bytes, rate = r.packets or {}, r.bytes or {}, r.rate or {}
   out[#out+1] = ("<header><h1>snabb bench: <code>%s</code></h1>\n"):format(esc(r.config or "?"))
   local meta = {}
   if r.pcap then meta[#meta+1] = ("capture <code>%s</code>"):format(esc(r.pcap)) end
   if r.date then meta[#meta+1] = esc(r.date) end
   if #meta > 0 then out[#out+1] = ('<p class="meta">%s</p>'):format(table.concat(meta, " · ")) end
   out[#out+1] = '</header>\n<div class="cards">\n'
   card(out, "Input", measure(rate.input_mpps, 2, "Mpps"),
        ("%s packets<br>%s bytes"):format(int(packets.input), int(bytes.input)))
   card(out, "Output", measure(rate.output_mpps, 2, "Mpps"),
        ("%s packets<br>%s bytes"):format(int(packets.output), int(bytes.output)))
   card(out, "Output, wire", measure(rate.output_gbps_wire, 2, "Gbit/s"))
   card(out, "Output, L2", measure(rate.output_gbps_l2, 2, "Gbit/s"))
   local dropped = packets.dropped
   local drop_share = finite(dropped) and finite(packets.input) and packets.input > 0
      and percent(dropped / packets.input) .. " of input" or nil
   card(out, "Dropped", int(dropped), drop_share, finite(dropped) and dropped > 0)
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
   chart("Cycles per packet, by app", "cycles-chart", #(r.apps or {}) > 0, "no apps")
   chart("Throughput over time", "throughput-chart", #(r.timeline or {}) > 0, "no samples")
   out[#out+1] = "</div>\n"
end

local function apps_table (out, r)
   local apps = r.apps or {}
   panel(out, "Apps", #apps > 0, "no apps", function ()
      local rows = {}
      for i, a in ipairs(apps) do
         local width = finite(a.share) and math.max(0, math.min(1, a.share)) * 80 or 0
         rows[i] = {esc(a.name or "?"), esc(a.class or ""), int(a.packets_in), int(a.packets_out),
                    fixed(a.cycles_per_packet, 1),
                    ('<b>%s</b><span style="width:%.0fpx"></span>'):format(percent(a.share), width)}
      end
      table_html(out, {{"app", "name"}, {"class"}, {"packets in", "n"}, {"packets out", "n"},
                       {"cycles/packet", "n"}, {"share of engine time", "share"}}, rows)
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
   header(out, r)
   offered_load(out, r)
   charts(out, r)
   apps_table(out, r)
   links_table(out, r)
   latency_table(out, r)
   packet_latency(out, r)
   out[#out+1] = "</main>\n<script>\n"
   out[#out+1] = chartjs -- made safe to inline by wrap_js.lua
   out[#out+1] = '\n</script>\n<script type="application/json" id="bench-data">'
   out[#out+1] = data_json(r)
   out[#out+1] = "</script>\n<script>\n"
   out[#out+1] = script
   out[#out+1] = latency_script
   out[#out+1] = "</script>\n</body>\n</html>\n"
   return table.concat(out)
end

-- A plausible result (used by the selftest; handy for looking at the report's layout).
function M.sample_result ()
   local seconds, timeline = 2.01, {}
   for i = 1, 20 do
      local mpps = 10.5 + 0.6 * math.sin(i / 3)
      timeline[i] = {t = i / 10, input_mpps = mpps, output_mpps = mpps * 0.998,
                     output_gbps_wire = mpps * 0.998 * (64 + 20) * 8 / 1e3}
   end
   return {
      config = "examples/forward.lua", pcap = "examples/imix.pcap", date = "2026-11-25 15:30:00",
      seconds = seconds,
      packets = {input = 21105000, output = 21062790, dropped = 42210},
      bytes = {input = 1350720000, output = 1348018560},
      rate = {input_mpps = 21105000 / seconds / 1e6, output_mpps = 21062790 / seconds / 1e6,
              output_gbps_wire = 21062790 * 84 * 8 / seconds / 1e9,
              output_gbps_l2 = 1348018560 * 8 / seconds / 1e9},
      apps = {
         {name = "bench_source", class = "programs.bench.Source", packets_in = 0, packets_out = 21105000,
          cycles = 3.17e8, cycles_per_packet = 3.17e8 / 21105000, share = 0.28},
         {name = "fwd", class = "examples.forward.Forward", packets_in = 21105000, packets_out = 21062790,
          cycles = 4.85e8, cycles_per_packet = 4.85e8 / 21105000, share = 0.43},
         {name = "nat<b>&", class = "apps.nat.NAT", packets_in = 21062790, packets_out = 21062790,
          cycles = 2.1e8, cycles_per_packet = 2.1e8 / 21062790, share = 0.19},
         {name = "bench_sink", class = "programs.bench.Sink", packets_in = 21062790, packets_out = 0,
          cycles = 1.1e8, cycles_per_packet = 1.1e8 / 21062790, share = 0.1},
      },
      links = {
         {link = "bench_source.output -> fwd.input", txpackets = 21105000, rxpackets = 21105000, txdrop = 0, queued = 0},
         {link = "fwd.output -> nat<b>&.input", txpackets = 21105000, rxpackets = 21062790, txdrop = 42210, queued = 0},
         {link = "nat<b>&.output -> bench_sink.input", txpackets = 21062790, rxpackets = 21062790, txdrop = 0, queued = 0},
      },
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
