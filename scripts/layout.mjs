#!/usr/bin/env node
// The layout check (issue 15): per crate (core/src, src, sim/src), the
// graph of `crate::` / `super::` references between source files, its
// import cycles, and the production files over 300 lines as `wc -l` counts
// them (a module's own `tests.rs`, tests/ and benches/ are not production).
//
//   node scripts/layout.mjs            report, and fail on anything not in the baseline
//   node scripts/layout.mjs --baseline write the baseline (scripts/layout-baseline.json)
//
// The baseline lists what the tree had when the check arrived; it may only
// shrink: a new cycle (or a cycle with a file not in a known one) or a new
// file over the bound fails.
import { readFileSync, readdirSync, statSync, writeFileSync, existsSync } from "node:fs";
import { join, relative, dirname } from "node:path";

const root = join(dirname(new URL(import.meta.url).pathname), "..");
const CRATES = ["core/src", "src", "sim/src"];
const MAX_LINES = 300;
const BASELINE = join(root, "scripts/layout-baseline.json");

function files(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith(".rs")) out.push(p);
  }
  return out;
}

// The module path of a file: core/src/a/b.rs and core/src/a/b/mod.rs are `a::b`.
function modulePath(crateDir, file) {
  const rel = relative(crateDir, file).replace(/\.rs$/, "").split("/");
  if (rel[rel.length - 1] === "mod") rel.pop();
  if (rel.length === 1 && ["lib", "main"].includes(rel[0])) return [];
  return rel;
}

// Source without comments, string and character literals (so doc text and
// SQL are not imports): a scanner, not a regex, so that a string with a `\`
// line continuation, a raw string holding `"`, or a `'"'` char literal
// cannot pair quotes wrongly and hide (or invent) a reference.
const CHAR = /^'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'/;
const RAW = /^(?:br|cr|r)(#*)"/;
function code(text) {
  let out = "";
  let i = 0;
  const n = text.length;
  const wordBefore = (k) => /[A-Za-z0-9_]/.test(text[k - 1] || "");
  while (i < n) {
    const c = text[i], d = text[i + 1];
    let m;
    if (c === "/" && d === "/") {
      while (i < n && text[i] !== "\n") i++;
    } else if (c === "/" && d === "*") {
      let depth = 0;
      do {
        if (text[i] === "/" && text[i + 1] === "*") { depth++; i += 2; }
        else if (text[i] === "*" && text[i + 1] === "/") { depth--; i += 2; }
        else i++;
      } while (i < n && depth > 0);
      out += " ";
    } else if ((c === "r" || c === "b" || c === "c") && !wordBefore(i) && (m = RAW.exec(text.slice(i, i + 300)))) {
      const close = '"' + m[1];
      const end = text.indexOf(close, i + m[0].length);
      i = end < 0 ? n : end + close.length;
      out += '""';
    } else if (c === '"' || ((c === "b" || c === "c") && d === '"' && !wordBefore(i))) {
      i += c === '"' ? 1 : 2;
      while (i < n && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i++;
      out += '""';
    } else if (c === "'" && (m = CHAR.exec(text.slice(i, i + 12)))) {
      i += m[0].length;
      out += "' '";
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

// A module's own `tests.rs` is test code when its parent declares it so:
// `#[cfg(test)] mod tests;` in a/b.rs or a/b/mod.rs for a/b/tests.rs (any
// other `tests.rs` is production code like any file).
function isTestFile(f) {
  if (!f.endsWith("/tests.rs")) return false;
  const dir = dirname(f);
  return [`${dir}.rs`, join(dir, "mod.rs"), join(dir, "lib.rs"), join(dir, "main.rs")].some(
    (p) => existsSync(p) && /#\[cfg\(test\)\]\s*mod\s+tests\s*;/.test(code(readFileSync(p, "utf8"))),
  );
}

// Lines as `wc -l` counts them.
function lineCount(text) {
  return (text.match(/\n/g) || []).length;
}

// Every path a `use` tree names, expanded: `use crate::a::{b, c::d}` -> a::b, a::c::d.
function usePaths(tree) {
  tree = tree.replace(/\s+/g, "");
  const brace = tree.indexOf("{");
  if (brace < 0) return [tree.replace(/::\*$/, "").replace(/as\w+$/, "")];
  const prefix = tree.slice(0, brace);
  const inner = tree.slice(brace + 1, tree.lastIndexOf("}"));
  const parts = [];
  let depth = 0, start = 0;
  for (let i = 0; i <= inner.length; i++) {
    const ch = inner[i];
    if (ch === "{") depth++;
    else if (ch === "}") depth--;
    else if ((ch === "," && depth === 0) || i === inner.length) {
      if (i > start) parts.push(inner.slice(start, i));
      start = i + 1;
    }
  }
  return parts.flatMap((p) => (p === "self" ? [prefix.replace(/::$/, "")] : usePaths(prefix + p)));
}

function graph(crateDir) {
  const dir = join(root, crateDir);
  const all = files(dir).filter((f) => !isTestFile(f));
  const byModule = new Map(all.map((f) => [modulePath(dir, f).join("::"), f]));
  const isModule = (segs) => byModule.has(segs.join("::"));
  // Pass 1: every path each file names, made absolute, and what its
  // `pub use` items re-export (module -> name -> absolute path).
  const named = new Map();
  const reexports = new Map();
  for (const f of all) {
    const here = modulePath(dir, f);
    const text = code(readFileSync(f, "utf8"));
    // Inline modules (`mod tests { ... }`): `self` and `super` inside one are
    // relative to it, not to the file's module.
    const inline = [];
    for (const m of text.matchAll(/\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{/g)) {
      let depth = 0, end = text.length;
      for (let i = m.index + m[0].length - 1; i < text.length; i++) {
        if (text[i] === "{") depth++;
        else if (text[i] === "}" && --depth === 0) { end = i; break; }
      }
      inline.push({ name: m[1], start: m.index, end });
    }
    const scope = (at) => [...here, ...inline.filter((b) => b.start < at && at < b.end).map((b) => b.name)];
    // `crate::…`, `super::…`, `self::…`, and a path through a child module
    // of this one (`use child::x;`, `child::f()`): absolute segments, or null.
    const absolute = (r, at) => {
      const segs = r.split("::");
      const mod = scope(at);
      if (segs[0] === "crate") return segs.slice(1);
      if (segs[0] === "self") return [...mod, ...segs.slice(1)];
      if (segs[0] === "super") {
        // `super` is the parent of the enclosing module (a/b.rs and a/b/mod.rs are both `a::b`).
        let base = mod.slice();
        let i = 0;
        while (segs[i] === "super") { base = base.slice(0, -1); i++; }
        return [...base, ...segs.slice(i)];
      }
      return isModule([...mod, segs[0]]) ? [...mod, ...segs] : null;
    };
    const refs = [];
    for (const m of text.matchAll(/\b(pub(?:\([a-z]+\))?\s+)?use\s+([^;]+);/g)) {
      for (const r of usePaths(m[2])) {
        const abs = absolute(r.replace(/^::/, ""), m.index);
        if (!abs) continue;
        refs.push(abs);
        if (m[1]) {
          const alias = /as(\w+)$/.exec(m[2].replace(/\s+/g, ""));
          const name = r.split("::").pop();
          const key = here.join("::");
          if (!reexports.has(key)) reexports.set(key, new Map());
          reexports.get(key).set(alias && !m[2].includes("{") ? alias[1] : name, abs);
        }
      }
    }
    // Paths in code (the `use` items were read above, whole).
    const body = text.replace(/\buse\s+[^;]+;/g, (u) => " ".repeat(u.length));
    for (const m of body.matchAll(/(?<![A-Za-z0-9_:])([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
      const abs = absolute(m[1], m.index);
      if (abs) refs.push(abs);
    }
    named.set(f, refs);
  }
  // The file that defines what `segs` names: the longest module prefix, then
  // through that module's re-exports (`pub use`) to where the item lives.
  const resolve = (segs, depth = 0) => {
    for (let n = segs.length; n > 0; n--) {
      const key = segs.slice(0, n).join("::");
      const f = byModule.get(key);
      if (!f) continue;
      const via = segs.length > n && depth < 8 ? reexports.get(key)?.get(segs[n]) : undefined;
      if (via) return resolve([...via, ...segs.slice(n + 1)], depth + 1) ?? f;
      return f;
    }
    return null;
  };
  const edges = new Map();
  for (const f of all) {
    const targets = new Set();
    for (const abs of named.get(f)) {
      const t = resolve(abs);
      if (t && t !== f) targets.add(t);
    }
    edges.set(f, targets);
  }
  return { all, edges };
}

// Tarjan's strongly connected components; those of two or more files are cycles.
function cycles(nodes, edges) {
  let index = 0;
  const idx = new Map(), low = new Map(), stack = [], on = new Set(), out = [];
  const visit = (v) => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); on.add(v);
    for (const w of edges.get(v) || []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do { w = stack.pop(); on.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1) out.push(scc.map((f) => relative(root, f)).sort());
    }
  };
  for (const v of nodes) if (!idx.has(v)) visit(v);
  return out;
}

const found = { cycles: [], large: {} };
for (const c of CRATES) {
  const { all, edges } = graph(c);
  found.cycles.push(...cycles(all, edges));
  for (const f of all) {
    const n = lineCount(readFileSync(f, "utf8"));
    if (n > MAX_LINES) found.large[relative(root, f)] = n;
  }
}

if (process.argv.includes("--baseline")) {
  writeFileSync(BASELINE, JSON.stringify(found, null, 2) + "\n");
  console.log(`layout: baseline written (${found.cycles.length} cycles, ${Object.keys(found.large).length} files over ${MAX_LINES} lines)`);
  process.exit(0);
}

const base = existsSync(BASELINE) ? JSON.parse(readFileSync(BASELINE, "utf8")) : { cycles: [], large: {} };
const problems = [];
for (const scc of found.cycles) {
  const known = base.cycles.some((b) => scc.every((f) => b.includes(f)));
  console.log(`${known ? "known" : "NEW"} cycle (${scc.length} files): ${scc.join(" <-> ")}`);
  if (!known) problems.push(`a new import cycle: ${scc.join(", ")}`);
}
for (const [f, n] of Object.entries(found.large)) {
  const known = f in base.large;
  console.log(`${known ? "known" : "NEW"} file over ${MAX_LINES} lines: ${f} (${n})`);
  if (!known) problems.push(`${f} has ${n} production lines (at most ${MAX_LINES})`);
}
if (problems.length) {
  console.error(`layout: FAILED\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`layout: ok (${found.cycles.length} known cycles, ${Object.keys(found.large).length} known large files; the baseline may only shrink)`);
