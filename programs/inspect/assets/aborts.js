// snabb inspect's aborts and blacklists view (#/aborts, #/aborts/page/N), from
// /inspect/api/aborts (programs/inspect/aborts.lua): first the code LuaJIT blacklisted (it runs
// interpreted for good), then every abort grouped by where recording stopped and why, with the
// reason in plain words, the count, the apps, the source line and the code each kept out of the
// JIT. Positions link to the source view (#/source/CHUNK/line/N). Uses inspect.js's helpers (el,
// link, api, comma, percent, pager, table, view), which are there by the time a route runs.
"use strict";

(window.inspectRoutes = window.inspectRoutes || []).push(
  {pattern: /^#\/aborts(?:\/page\/(\d+))?$/, nav: "nav-aborts", show: (m) => showAborts(m[1] ? m[1] - 1 : 0)});

const ABORT_ROWS = 100; // groups per page

// A position as a link to the source view, or text for a built-in.
function sourceLink(source, line, text) {
  if (!source || !line) return text;
  return el("a", {href: `#/source/${encodeURIComponent(source)}/line/${line}`, className: "src-link"}, text);
}

// "file.lua:12" as a link to its line.
function startLink(at) {
  const m = at.match(/^(.*):(\d+)$/);
  return m ? sourceLink(m[1], m[2], at) : at;
}

function appsShare(inApps) {
  return (inApps || []).map((a) => `${a.name}${a.interpreted !== null && a.interpreted !== undefined ? " (" + percent(a.interpreted) + " of its samples interpreted)" : ""}`).join(", ");
}

async function showAborts(page) {
  const d = await api("aborts");
  view.replaceChildren();
  view.append(el("h2", {}, "Aborts and blacklists"));
  if (!d.auditlog) { view.append(el("p", {className: "warning"}, "this run has no auditlog (--no-auditlog): no aborts to show")); return; }
  view.append(el("p", {id: "aborts-summary"}, `${comma(d.aborts)} aborted attempts at traces in ${comma(d.groups.length)} places; ` +
    `${comma(d.blacklisted.length)} blacklisting${d.blacklisted.length === 1 ? "" : "s"}` +
    (d.flushes ? `; ${d.flushes} flushes (a flush lifts blacklists)` : "")));

  // Blacklisted code first: what runs interpreted for good.
  const bl = el("section", {id: "blacklisted", ariaLabel: "blacklisted code"});
  bl.append(el("h3", {}, "Kept out of the JIT for good"));
  if (!d.blacklisted.length) {
    bl.append(el("p", {className: "muted"}, "Nothing was blacklisted: LuaJIT blacklists the start of a trace after about ten aborts there " +
      "(a stitched continuation after one), and the code then runs interpreted until the process ends."));
  } else {
    bl.append(el("p", {className: "muted"}, "LuaJIT stops trying to compile code that keeps aborting: it patches the bytecode where recording starts " +
      "(FORL to IFORL, FUNCF to IFUNCF, ...) and the code runs interpreted from then on."));
    const ul = el("ul");
    for (const b of d.blacklisted) {
      const where = `${b.source}:${b.line}`;
      ul.append(el("li", {className: "blacklisted" + (b.tooling ? " muted" : ""), dataset: {where, kind: b.kind || "", aborts: b.aborts}},
        el("strong", {}, "kept out of the JIT for good: "), sourceLink(b.source, b.line, where),
        ` (${b.what}${b["function"] && !b.what.endsWith(b["function"]) ? ", " + b["function"] : ""})${b.app ? " in app " + b.app : ""}${b.tooling ? ", snabb's own" : ""}, `,
        `${comma(b.aborts)} abort${b.aborts === 1 ? "" : "s"}, last reason: `,
        el("span", {className: "reason", title: b.reason}, `${b.message}: ${b.words}`), ` (at `, sourceLink(b.abort_source, b.abort_line, b.at), ")",
        b.text ? el("code", {className: "src-text"}, b.text) : "",
        b.in_apps && b.in_apps.length ? el("span", {className: "in-apps"}, ` in the code of ${appsShare(b.in_apps)}`) : ""));
    }
    bl.append(ul);
  }
  view.append(bl);

  // Every abort, grouped by (position, reason), paged.
  const pages = Math.max(1, Math.ceil(d.groups.length / ABORT_ROWS));
  page = Math.min(page || 0, pages - 1);
  const go = (p) => { location.hash = "#/aborts/page/" + (p + 1); };
  const rows = d.groups.slice(page * ABORT_ROWS, (page + 1) * ABORT_ROWS).map((g) => ({
    props: {className: (g.blacklisted ? "blacklisting" : "") + (g.tooling ? " muted" : ""), dataset: {where: g.where, reason: g.reason, count: g.count}},
    cells: [sourceLink(g.source, g.line, g.where), comma(g.count),
      el("span", {}, el("span", {className: "reason-words"}, g.words), el("br"), el("span", {className: "muted"}, g.message),
        g.blacklisted ? el("span", {className: "warning"}, ` — blacklisted its start ${g.blacklisted === 1 ? "once" : g.blacklisted + " times"}`) : ""),
      el("span", {}, g.apps.length ? g.apps.join(", ") : (g.tooling ? el("span", {className: "muted"}, "snabb's own") : ""),
        g.in_apps.length ? el("span", {className: "muted in-apps"}, ` (code of ${appsShare(g.in_apps)})`) : ""),
      g.text ? el("code", {className: "src-text"}, g.text) : "",
      el("span", {}, ...g.starts.slice(0, 3).flatMap((s, i) => [i ? ", " : "", startLink(s.at), ` (${comma(s.count)})`]),
        g.starts.length > 3 ? ` and ${g.starts.length - 3} more` : ""),
    ],
  }));
  view.append(el("h3", {}, "Every abort, by place and reason"),
    pager(page, pages, go, "abort list") || "",
    el("div", {id: "abort-groups"}, table(["where recording stopped", "times", "why, in plain words (and LuaJIT's message)", "app", "source line", "kept out of the JIT: where the attempts started (times)"],
      rows, [false, true, false, false, false, false])),
    pager(page, pages, go, "abort list") || "");
}
