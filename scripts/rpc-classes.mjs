// Makes Durable Object classes of a worker-build output RPC-capable:
// workerd serves RPC only on classes deriving from `DurableObject`
// ("cloudflare:workers"), and worker-build 0.8.7 exports each class as a
// Proxy of a plain wasm-bindgen class. This appends, once, what worker-build
// itself emits for its emscripten target (worker-build-0.8.7/src/main.rs,
// add_export_wrappers): `Object.setPrototypeOf(X.prototype,
// DurableObject.prototype); Object.setPrototypeOf(X, DurableObject)`, applied
// through the exported Proxy to the class it wraps. Fails (exit 1) when a
// class is not among the module's exports, so a change in worker-build's
// output breaks the build instead of silently disabling RPC.
//   node scripts/rpc-classes.mjs <build>/index.js ClassName...
import { readFileSync, writeFileSync } from "node:fs";

const [file, ...classes] = process.argv.slice(2);
if (!file || classes.length === 0) {
  console.error("usage: node scripts/rpc-classes.mjs <index.js> ClassName...");
  process.exit(2);
}
const MARK = "/* rpc-classes */";
let js = readFileSync(file, "utf8");
if (js.includes(MARK)) process.exit(0);
const exports = [...js.matchAll(/export\s*\{([^}]*)\}/g)].flatMap((m) =>
  m[1].split(",").map((s) => s.trim().split(/\s+as\s+/)).map(([local, name]) => [name ?? local, local]),
);
const local = new Map(exports);
const lines = [`${MARK}import{DurableObject as __RpcDurableObject}from"cloudflare:workers";`];
for (const c of classes) {
  const l = local.get(c);
  if (!l) {
    console.error(`rpc-classes: ${c} is not exported by ${file} (exports: ${[...local.keys()].join(", ")})`);
    process.exit(1);
  }
  lines.push(`Object.setPrototypeOf(${l}.prototype,__RpcDurableObject.prototype);Object.setPrototypeOf(${l},__RpcDurableObject);`);
}
writeFileSync(file, `${js.trimEnd()}\n${lines.join("\n")}\n`);
