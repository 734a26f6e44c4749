// snabb inspect's side-trace trees (#/tree, #/tree/page/N, #/tree/N), drawn as SVG from the trace
// list (/inspect/api/traces: each trace's parent and the exit it leaves by). Each root trace with
// its side traces as children, edges labelled by exit number (a stitched continuation, exit -1,
// dashed and labelled "stitch"), nodes sized and shaded by samples, each with its link type, source
// span and the trace it links to. The layout is d3-hierarchy's tidy tree (d3.tree, npm
// d3-hierarchy 3.1.2, compiled into the binary as d3_hierarchy.js). Nodes are links to #/trace/N:
// Tab reaches them, Enter opens one, arrow keys move to the parent (left), first child (right)
// and siblings (up, down). #/tree lists the trees with side traces, most samples first, a page
// holding up to TREE_NODES nodes, the first TREES_OPEN drawn and the others collapsed (drawn when
// opened), so 1,000 traces stay quick to draw and to read.
"use strict";

(window.inspectRoutes = window.inspectRoutes || []).push(
  {pattern: /^#\/tree(?:\/page\/(\d+))?$/, nav: "nav-tree", show: (m) => showForest(m[1] ? m[1] - 1 : 0)},
  {pattern: /^#\/tree\/(\d+)$/, nav: "nav-tree", show: (m) => showTree(Number(m[1]))});

const TREE_NODES = 300;  // nodes per page of #/tree
const TREES_OPEN = 8;  // trees of a page drawn at once, the others when opened (Enter on their heading)
const NODE_DX = 28, NODE_DY = 330;  // vertical distance between siblings, horizontal per level
const LABEL_CHARS = 38;  // a node's label is cut there, to stay clear of the next level's
const SVGNS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// The forest: {trees, byNumber}. A parent missing from the list (its number reused after a flush:
// the list has the latest trace of each number) leaves its side trace a root; a circle of parents
// (a corrupt log) is cut where it closes.
function forest(traces) {
  const byNumber = new Map(traces.map((t) => [t.number, t]));
  const children = new Map();
  const roots = [];
  for (const t of traces) {
    const parent = t.parent && byNumber.get(t.parent);
    if (parent && parent.generation === t.generation && t.parent !== t.number) {
      if (!children.has(t.parent)) children.set(t.parent, []);
      children.get(t.parent).push(t);
    } else {
      roots.push(t);
    }
  }
  for (const list of children.values()) list.sort((a, b) => a.exit - b.exit || a.number - b.number);
  // Trees as nested {trace, children} with their total samples and size; each trace once.
  const seen = new Set();
  const build = (t) => {
    seen.add(t.number);
    const kids = (children.get(t.number) || []).filter((c) => !seen.has(c.number)).map(build);
    return {trace: t, children: kids, total: t.samples + kids.reduce((n, k) => n + k.total, 0),
      size: 1 + kids.reduce((n, k) => n + k.size, 0)};
  };
  const trees = roots.map(build);
  // Traces on a circle of parents only: each such circle as a tree of its own.
  for (const t of traces) if (!seen.has(t.number)) trees.push(build(t));
  return {trees, byNumber};
}

let forestCache = null;
async function traceForest() {
  const d = await api("traces");
  if (!forestCache || forestCache.d !== d) forestCache = {d, f: forest(d.traces)};
  return forestCache.f;
}

// One tree as SVG; selected: the trace number to mark and focus.
function drawTree(tree, maxSamples, selected) {
  const root = d3.hierarchy(tree, (n) => n.children);
  d3.tree().nodeSize([NODE_DX, NODE_DY]).separation((a, b) => (a.parent === b.parent ? 1 : 1.3))(root);
  let x0 = Infinity, x1 = -Infinity, y1 = 0;
  root.each((n) => { x0 = Math.min(x0, n.x); x1 = Math.max(x1, n.x); y1 = Math.max(y1, n.y); });
  const margin = 22, width = y1 + NODE_DY + 2 * margin, height = x1 - x0 + 2 * margin;
  const svg = svgEl("svg", {width, height, viewBox: `${-margin} ${x0 - margin} ${width} ${height}`,
    role: "group", "aria-label": `side-trace tree of trace ${tree.trace.number}, ${tree.size} traces`, class: "trace-tree",
    "data-root": tree.trace.number});
  const edges = svgEl("g", {class: "edges"}), nodes = svgEl("g", {class: "nodes"});
  svg.append(edges, nodes);
  for (const n of root.descendants()) {
    const t = n.data.trace;
    if (n.parent) {
      const stitch = t.exit === -1;
      const [px, py] = [n.parent.x, n.parent.y];
      const mid = (py + n.y) / 2;
      edges.append(svgEl("path", {class: "edge" + (stitch ? " stitch" : ""), d: `M${py},${px}C${mid},${px} ${mid},${n.x} ${n.y},${n.x}`,
        "data-from": n.parent.data.trace.number, "data-to": t.number, "data-exit": t.exit}));
      edges.append(svgEl("text", {class: "edge-label", x: n.y - 16, y: n.x - 5, "text-anchor": "end"},
        stitch ? "stitch" : "exit " + t.exit));
    }
    const share = maxSamples > 0 ? t.samples / maxSamples : 0;
    const r = 4 + 9 * Math.sqrt(share);
    const linkText = t.link && t.link !== t.number ? ` → ${t.link}` : "";
    const label = `${t.linktype}${linkText} · ${t.span}`;
    const a = svgEl("a", {href: "#/trace/" + t.number, class: "node" + (t.number === selected ? " selected" : "") + (t.tooling ? " tooling" : ""),
      "data-trace": t.number, "data-parent": t.parent || "", "data-exit": t.exit === undefined || t.exit === null ? "" : t.exit,
      "aria-label": `trace ${t.number}${t.parent ? `, side trace of ${t.parent} at ${t.exit === -1 ? "a stitch" : "exit " + t.exit}` : ", root trace"}, ` +
        `${t.samples} samples, ${t.linktype}${linkText ? " to trace " + t.link : ""}, ${t.span}`},
      svgEl("title", {}, `trace ${t.number}: ${comma(t.samples)} samples; ${label}${t.app ? "; app " + t.app : ""}`),
      svgEl("circle", {cx: n.y, cy: n.x, r: r.toFixed(1), style: `fill: hsl(25, 85%, ${(92 - 47 * Math.sqrt(share)).toFixed(0)}%)`}),
      svgEl("text", {x: n.y + r + 2, y: n.x - 5},  // above the edges that leave the node
        svgEl("tspan", {class: "node-number"}, String(t.number)),
        svgEl("tspan", {class: "node-label"}, ` ${comma(t.samples)} · ${label.length > LABEL_CHARS ? label.slice(0, LABEL_CHARS - 1) + "…" : label}`)));
    a.treeNode = n;
    nodes.append(a);
  }
  svg.addEventListener("keydown", treeKeys);
  return svg;
}

// Arrow keys between the nodes of a tree: left the parent, right the first child, up and down
// the previous and next sibling.
function treeKeys(e) {
  const a = e.target.closest && e.target.closest("a.node");
  if (!a || !a.treeNode) return;
  const n = a.treeNode;
  let to = null;
  if (e.key === "ArrowLeft") to = n.parent;
  else if (e.key === "ArrowRight") to = n.children && n.children[0];
  else if (e.key === "ArrowUp" || e.key === "ArrowDown") {
    const sibs = n.parent ? n.parent.children : [n];
    to = sibs[sibs.indexOf(n) + (e.key === "ArrowUp" ? -1 : 1)];
  }
  if (!to) return;
  e.preventDefault();
  const next = a.ownerSVGElement.querySelector(`a.node[data-trace="${to.data.trace.number}"]`);
  if (next) next.focus();
}

// A tree under its heading, collapsible (details): drawn when first opened.
function treeSection(tree, maxSamples, selected, open) {
  const t = tree.trace;
  const box = el("div", {className: "tree-box"});
  const section = el("details", {className: "tree", open, dataset: {root: t.number}},
    el("summary", {}, el("strong", {}, `trace ${t.number}`),
      ` ${t.span}${t.app ? " (app " + t.app + ")" : ""}: ${tree.size - 1} side trace${tree.size === 2 ? "" : "s"}, ${comma(tree.total)} samples `,
      link("#/trace/" + t.number, "open trace " + t.number)),
    box);
  const draw = () => { if (!box.firstChild) box.append(drawTree(tree, maxSamples, selected)); };
  if (open) draw();
  section.addEventListener("toggle", () => { if (section.open) draw(); });
  return section;
}

function treeLegend() {
  return el("p", {className: "muted tree-legend"}, "Each root trace with its side traces to the right; an edge is the exit a side trace " +
    "leaves its parent by (dashed: a stitched continuation). Circle size and shade: samples. Beside each: samples · link type (→ the trace it " +
    "links to) · source span. Tab to a trace, Enter opens it; arrow keys: left parent, right first child, up/down siblings.");
}

async function showForest(page) {
  const f = await traceForest();
  const trees = f.trees.filter((t) => t.size > 1).sort((a, b) => b.total - a.total || b.size - a.size || a.trace.number - b.trace.number);
  const alone = f.trees.length - trees.length;
  // Pages: whole trees, up to TREE_NODES nodes a page (a bigger tree has a page of its own).
  const pages = [];
  for (const t of trees) {
    const last = pages[pages.length - 1];
    if (last && last.nodes + t.size <= TREE_NODES) { last.trees.push(t); last.nodes += t.size; }
    else pages.push({trees: [t], nodes: t.size});
  }
  const n = Math.max(1, pages.length);
  page = Math.min(page || 0, n - 1);
  const go = (p) => { location.hash = "#/tree/page/" + (p + 1); };
  const maxSamples = Math.max(0, ...f.trees.map(function most(t) { return Math.max(t.trace.samples, ...t.children.map(most)); }));
  view.replaceChildren(el("h2", {}, "Side-trace trees"),
    el("p", {id: "tree-summary"}, `${comma(trees.length)} root traces with side traces (${comma(trees.reduce((s, t) => s + t.size, 0))} traces), ` +
      `most samples first; ${comma(alone)} traces have none (`, link("#/traces", "the trace list"), ")."),
    treeLegend(), pager(page, n, go, "tree list") || "");
  (pages[page] || {trees: []}).trees.forEach((t, i) => view.append(treeSection(t, maxSamples, null, i < TREES_OPEN)));
  if (!trees.length) view.append(el("p", {className: "muted"}, "No trace has side traces."));
  view.append(pager(page, n, go, "tree list") || "");
}

async function showTree(number) {
  const f = await traceForest();
  if (!f.byNumber.has(number)) throw new Error(`no trace ${number} in this run`);
  const inTree = (t) => t.trace.number === number || t.children.some(inTree);
  const tree = f.trees.find(inTree);
  const maxSamples = Math.max(0, ...f.trees.map(function most(t) { return Math.max(t.trace.samples, ...t.children.map(most)); }));
  view.replaceChildren(el("h2", {}, `Side-trace tree of trace ${number}`),
    el("p", {}, link("#/trace/" + number, `trace ${number}`), " · ", link("#/tree", "all trees")), treeLegend(),
    treeSection(tree, maxSamples, number, true));
  const sel = view.querySelector(`a.node[data-trace="${number}"]`);
  if (sel) setTimeout(() => { sel.focus(); }, 0);
}
