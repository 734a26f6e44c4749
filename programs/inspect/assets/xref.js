// snabb inspect's cross-references within one trace (#/trace/N): an IR instruction to the
// machine-code lines of its code and the bytecode (and source line) it was recorded for, a
// machine-code line to its IR instruction, a bytecode line to the IR instructions recorded for it,
// a snapshot to the bytecode its exit resumes at. The links are the trace's JSON's (xref: true;
// made by programs/inspect/xref.lua from the maps mcode-map.patch records): IR lines carry mc
// [first, last], bc and src; machine-code lines ir; bytecode lines ir, the IR lines recorded for
// it. inspect.js marks the linked lines ("linked"; "related" stays the exit's) and turns the
// listings' pages to them; this file works out which they are and says so in #xref-map.
"use strict";

const irName = (l) => l.snapshot !== undefined ? `SNAP #${l.snapshot}` : `IR ${String(l.ins).padStart(4, "0")}`;

// The lines linked to the selection sel ({kind: "ir" | "mcode" | "bc", index}) in trace t, by
// listing: {ir, mcode, bc}, Sets of line indices (the selected line among them).
function xrefLinked(t, sel) {
  const out = {ir: new Set(), mcode: new Set(), bc: new Set()};
  if (!sel || !t || !t.xref) return out;
  const bytecodeOf = (b) => {  // a bytecode's lines (a comparison's jump shares it)
    const k = t.bytecode[b].k;
    for (let i = b; i < t.bytecode.length && t.bytecode[i].k === k; i++) out.bc.add(i);
    for (let i = b - 1; i >= 0 && t.bytecode[i].k === k; i--) out.bc.add(i);
  };
  const instruction = (i) => {  // an IR line: its machine code and its bytecode
    const l = t.ir[i];
    out.ir.add(i);
    if (l.mc) for (let m = l.mc[0]; m <= l.mc[1]; m++) out.mcode.add(m);
    if (l.bc !== undefined) bytecodeOf(l.bc);
  };
  if (sel.kind === "ir") instruction(sel.index);
  else if (sel.kind === "mcode") {
    out.mcode.add(sel.index);
    const l = t.mcode[sel.index];
    if (l.ir !== undefined) instruction(l.ir);
  } else if (sel.kind === "bc") {
    bytecodeOf(sel.index);
    for (const i of t.bytecode[sel.index].ir || []) instruction(i);
  }
  return out;
}

// What the selection is linked to, in words, with buttons that show each linked line (go(kind,
// index) turns its listing's page and focuses it): the paragraph #xref-map, or null.
function xrefDescribe(t, sel, go) {
  if (!t.xref) {
    return el("p", {id: "xref-map", className: "muted"}, "This trace's auditlog has no map from its IR to its machine code " +
      "and bytecode (written by a LuaJIT without mcode-map.patch): only guards link to the machine code, by their exits.");
  }
  const linked = xrefLinked(t, sel);
  const p = el("p", {id: "xref-map", dataset: {ir: [...linked.ir].join(","), mcode: [...linked.mcode].join(","), bc: [...linked.bc].join(",")}});
  const button = (kind, index, text) => el("button", {type: "button", className: "map-" + kind, dataset: {index}, onclick: () => go(kind, index)}, text);
  const mcodeSpan = (l) => {
    const n = l.mc[1] - l.mc[0] + 1;
    return [button("mcode", l.mc[0], t.mcode[l.mc[0]].address), n > 1 ? ` to ${t.mcode[l.mc[1]].address} (${n} instructions)` : " (1 instruction)"];
  };
  const source = (l) => l.src ? [" at ", button("bc", l.bc, l.src)] :
    l.bc !== undefined ? [" ", button("bc", l.bc, "(bytecode of a C function)")] : [];
  if (sel.kind === "ir") {
    const l = t.ir[sel.index];
    if (l.snapshot !== undefined) {
      p.append(`SNAP #${l.snapshot}: its exit resumes at a bytecode`, ...(l.bc !== undefined ? source(l) : [" the trace did not record (its entry)"]), ".");
    } else {
      p.append(`${irName(l)}: `, ...(l.mc ? ["machine code ", ...mcodeSpan(l)] : ["no machine code of its own (fused into another instruction, dead, or with the head)"]),
        "; ", ...(l.bc !== undefined ? ["recorded for a bytecode", ...source(l)] : ["recorded for no bytecode (the trace's entry, LOOP, a PHI)"]), ".");
    }
  } else if (sel.kind === "mcode") {
    const l = t.mcode[sel.index];
    if (l.ir === undefined) p.append(`${l.address}: code of no IR instruction (the trace's head, its tail or the loop's branch).`);
    else {
      const ir = t.ir[l.ir];
      p.append(`${l.address}: machine code of `, button("ir", l.ir, irName(ir)), ...(ir.bc !== undefined ? [", recorded for a bytecode", ...source(ir)] : []), ".");
    }
  } else {
    const l = t.bytecode[sel.index];
    const ir = l.ir || [];
    p.append(`bytecode${l.line ? " at " + l.line : ""}: ${ir.length} IR instruction${ir.length === 1 ? "" : "s"} recorded for it`,
      ...(ir.length ? [": ", ...ir.flatMap((i) => [button("ir", i, irName(t.ir[i])), " "])] : ["."]));
  }
  return p;
}
