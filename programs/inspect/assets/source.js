// snabb inspect's source view and hot machine code (programs/inspect; loaded before inspect.js,
// whose helpers it uses when called, to list its route in window.inspectRoutes): #/source/CHUNK[/line/N] shows a Lua file (CHUNK: its chunk name, e.g.
// @examples/forward.lua) with each line's samples (sampled machine-code addresses -> IR
// instruction -> recorded bytecode -> line, where the auditlog maps them) and the traces whose
// recorded bytecode covers it; the trace view's machine-code lines get their samples and a shade.
// Data: GET /inspect/api/source?chunk=CHUNK (programs/inspect/source.lua).
"use strict";

const SOURCE_PAGE = 500;  // source lines per page

(window.inspectRoutes = window.inspectRoutes || []).push(
  {pattern: /^#\/source\/(.+?)(?:\/line\/(\d+))?$/, nav: "nav-traces", show: (m) => showSource(m[1], m[2] ? Number(m[2]) : null)});

// The link to a "file:line" position's line in the source view.
function sourceHref(at) {
  const m = String(at).match(/^(.*):(\d+)$/);
  if (!m) return "#/source/" + enc("@" + at);
  return "#/source/" + enc("@" + m[1]) + "/line/" + m[2];
}

// "file:line" positions as links, comma-separated.
function sourceLinks(positions) {
  return positions.flatMap((at, i) => [i ? ", " : "", link(sourceHref(at), at)]);
}

// A machine-code line's samples as a fixed-width column, and its shade (none without samples).
function hotCount(n, max) {
  return el("span", {className: "hot-count"}, (n ? String(n) : "").padStart(6) + " ");
}
function heatStyle(n, max) {
  if (!n || !max) return "";
  return `background: rgba(230, 90, 20, ${(0.1 + 0.6 * n / max).toFixed(3)})`;
}

// The trace header's line about where its samples fall.
function hotSummary(t) {
  const h = t.by_address;
  const p = el("p", {id: "trace-hot", dataset: {total: h.total, loop: h.loop, head: h.head, outside: h.outside}});
  if (h.error) {
    p.append(el("span", {className: "warning"}, "no samples by machine-code line: " + h.error));
    return p;
  }
  if (!h.table) {
    p.append(el("span", {className: "muted"}, "no address table in this run (a snabb from before it, or --no-vmprofile): no samples by machine-code line"));
    return p;
  }
  p.append(`samples at machine-code addresses: ${comma(h.total)} (loop part ${comma(h.loop)}, entry ${comma(h.head)}` +
    `${h.outside ? ", at no listed instruction " + comma(h.outside) : ""}); ` +
    (h.total !== t.samples.total ? `the zone files count ${comma(t.samples.total)} for trace number ${t.number}, ` +
      "which includes earlier traces of that number (before a flush) and samples the address table had no slot for" : "as the zone files count"));
  return p;
}

async function showSource(chunk, line) {
  const d = await api("source?chunk=" + enc(chunk));
  view.replaceChildren();
  view.append(el("h2", {}, `Source ${d.chunk}`));
  const text = d.text || [];
  const rows = new Map(d.lines.map((r) => [r.line, r]));
  const n = Math.max(d.nlines, text.length);
  const placed = d.lines.reduce((s, r) => s + r.samples, 0);
  view.append(el("p", {id: "source-summary", dataset: {attributed: d.attributed, from: d.from || ""}},
    d.text ? `text from ${d.from === "disk" ? "the file on disk (the auditlog has none)" : "the run's auditlog" + (d.from === "auditlog (cut)" ? ", cut at its size cap" : "")}; `
      : "no text: neither the auditlog nor the disk has it (line numbers only); ",
    `${comma(d.attributed)} samples in compiled code put on its lines`));
  if (d.address_error) view.append(el("p", {className: "warning", id: "source-error"}, "no samples by line: " + d.address_error));
  else if (!d.address_table) view.append(el("p", {className: "warning"}, "this run has no address table (vmprofile/addresses): no samples by line"));
  else if (!d.map) view.append(el("p", {className: "muted", id: "source-nomap"},
    "This auditlog does not map machine code to IR instructions and bytecode, so samples in traces are not put on lines: each trace's count is below."));
  if (d.unplaced.length) {
    view.append(el("h3", {}, "samples in traces covering this file, not put on a line"),
      table(["trace", "samples", "loop part", "entry"], d.unplaced.map((u) => ({props: {dataset: {trace: u.trace}},
        cells: [link("#/trace/" + u.trace, "trace " + u.trace), comma(u.samples), comma(u.loop), comma(u.head)]})), [false, true, true, true]));
  }
  if (d.interp.length) {
    view.append(el("p", {id: "source-interp"}, "Interpreted: ", ...d.interp.flatMap((a, i) => [i ? ", " : "",
      link("#/app/" + enc(a.app), a.app), ` ${comma(a.samples)} samples`]),
      " (apps whose code is in this file). The interpreter's samples have no address in a trace, so they cannot be put on lines."));
  }
  // The listing, paged; line N's page shown and the line selected.
  const box = el("div", {className: "listing", id: "source-lines"});
  const max = d.lines.reduce((m, r) => Math.max(m, r.samples), 0);
  const pages = Math.max(1, Math.ceil(n / SOURCE_PAGE));
  const top = el("div"), bottom = el("div");
  const show = (page) => {
    const items = [];
    for (let i = page * SOURCE_PAGE + 1; i <= Math.min(n, (page + 1) * SOURCE_PAGE); i++) {
      const r = rows.get(i);
      const traces = r && Array.isArray(r.traces) ? r.traces : [];
      items.push(el("span", {className: "line" + (i === line ? " selected" : ""), id: "L" + i, tabIndex: -1, style: heatStyle(r && r.samples, max),
        dataset: {line: i, samples: r ? r.samples : 0, traces: traces.join(",")}},
        el("span", {className: "src"}, String(i).padStart(5) + " "), hotCount(r && r.samples, max),
        el("span", {className: "code"}, text[i - 1] === undefined ? "" : text[i - 1]),
        " ".repeat(Math.max(1, 81 - (text[i - 1] || "").length)),
        ...traces.flatMap((tr, k) => [k ? " " : "", link("#/trace/" + tr, "T" + tr)])));
    }
    box.replaceChildren(...items);
    top.replaceChildren(pager(page, pages, show, "source") || "");
    bottom.replaceChildren(pager(page, pages, show, "source") || "");
  };
  view.append(el("h3", {}, `${comma(n)} lines; samples, then the traces whose recorded bytecode covers each`), top, box, bottom);
  show(line ? Math.min(pages - 1, Math.floor((line - 1) / SOURCE_PAGE)) : 0);
  if (line) {
    const e = document.getElementById("L" + line);
    if (e) { e.focus({preventScroll: true}); e.scrollIntoView({block: "center"}); }
  }
}
