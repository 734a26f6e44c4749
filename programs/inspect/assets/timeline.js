// snabb inspect's counters over time (programs/inspect/history.lua), below the profile by app
// (#/apps, #/app/NAME): each app's cycles per packet and share of engine cycles, a point a second
// as the inspector sampled a running snabb's shared-memory counters since it started (what snabb
// top reads), drawn with Chart.js (the copy the bench's HTML report bundles, served as
// /inspect/chart.js and loaded only here), updated every second while shown. The latest point is
// also a table (keyboard, screen readers). A finished run has no live history: said so.
"use strict";

let chartLoaded = null;
function loadChart() {
  chartLoaded = chartLoaded || new Promise((resolve, reject) => {
    const s = el("script", {src: "/inspect/chart.js"});
    s.onload = () => resolve(window.Chart);
    s.onerror = () => reject(new Error("could not load /inspect/chart.js"));
    document.head.append(s);
  });
  return chartLoaded;
}

const PALETTE = ["#124", "#d33", "#2a7", "#e90", "#48c", "#c6c", "#777", "#4bb", "#8d5", "#a30"];

async function afterApps() {
  const prefix = runPrefix;
  const h = await api("history");
  const s = el("section", {id: "history", ariaLabel: "counters over time"});
  view.append(s);
  s.append(el("h2", {}, "Over time: cycles per packet and share, a point a second"));
  if (!h.live && !h.points.length) {
    s.append(el("p", {className: "muted", id: "history-none"}, "No live history: " + h.why + "."));
    s.dataset.points = 0;
    return;
  }
  const Chart = await loadChart();
  s.append(el("p", {id: "history-about"}), el("div", {className: "charts"},
    el("div", {className: "chart"}, el("canvas", {id: "history-cpp", role: "img", ariaLabel: "cycles per packet of each app over time"})),
    el("div", {className: "chart"}, el("canvas", {id: "history-share", role: "img", ariaLabel: "share of engine cycles of each app over time"}))),
  el("h3", {}, "latest point"), el("div", {id: "history-latest"}));
  const points = h.points.slice();
  const started = h.started;
  const names = () => [...new Set(points.flatMap((p) => Object.keys(p.apps)))].sort();
  const chart = (id, title, value, max) => new Chart(document.getElementById(id), {
    type: "line",
    data: {datasets: []},
    options: {animation: false, parsing: false, normalized: true, maintainAspectRatio: false,
      plugins: {title: {display: true, text: title}},
      scales: {x: {type: "linear", title: {display: true, text: "seconds since snabb inspect started"}},
        y: {beginAtZero: true, max, title: {display: true, text: title}}}},
  });
  const cpp = chart("history-cpp", "cycles per packet");
  const share = chart("history-share", "share of engine cycles (%)", 100);
  const draw = () => {
    const list = names();
    for (const [c, value] of [[cpp, (a) => a.cycles_per_packet], [share, (a) => 100 * a.share]]) {
      c.data.datasets = list.map((name, i) => ({label: name, borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: PALETTE[i % PALETTE.length], pointRadius: 1, borderWidth: 1.5,
        data: points.filter((p) => p.apps[name]).map((p) => ({x: +(p.t - started).toFixed(3), y: value(p.apps[name])}))}));
      c.update();
    }
    const last = points[points.length - 1];
    document.getElementById("history-about").textContent = `${points.length} points${h.live ? ", live from process " + h.pid : ""}` +
      `${h.ended || !h.live ? " (" + h.why + ")" : ""}; kept: the last ${comma(h.max_points)}`;
    s.dataset.points = points.length;
    s.dataset.last = last ? last.t : "";
    document.getElementById("history-latest").replaceChildren(last ? table(
      ["app", "cycles/packet", "share", "Mpps in", "Mpps out", "packets in", "packets out"],
      list.filter((n) => last.apps[n]).map((n) => {
        const a = last.apps[n];
        return {props: {dataset: {app: n}}, cells: [n, a.cycles_per_packet.toFixed(1), percent(a.share), a.mpps_in.toFixed(3),
          a.mpps_out.toFixed(3), comma(a.packets_in), comma(a.packets_out)]};
      }), [false, true, true, true, true, true, true]) : el("p", {className: "muted"}, "no point yet (the first comes a second after snabb inspect started)"));
  };
  draw();
  // New points each second, while this view is shown.
  const timer = setInterval(async () => {
    if (!s.isConnected || runPrefix !== prefix) { clearInterval(timer); return; }
    try {
      const since = points.length ? points[points.length - 1].t : 0;
      const res = await fetch(`/inspect/api/${prefix}history?since=${since}`);
      const more = await res.json();
      if (!res.ok) throw new Error(more.error);
      const fresh = more.points.filter((p) => !points.length || p.t > points[points.length - 1].t);
      points.push(...fresh);
      if (points.length > more.max_points) points.splice(0, points.length - more.max_points);
      Object.assign(h, {live: more.live, ended: more.ended, why: more.why});
      if (fresh.length || !more.live) draw();
      if (!more.live) clearInterval(timer);
    } catch (e) {
      clearInterval(timer);
      document.getElementById("history-about").textContent = "snabb inspect: " + e.message;
    }
  }, 1000);
}
