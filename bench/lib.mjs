// Small helpers shared by the benchmark drivers: statistics, bounded
// loops, timed HTTP calls and the pass-through Worker. Everything is
// loopback only and every loop is bounded in count and wall time.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { ROOT } from "../tests/lib/harness.mjs";

export const now = () => performance.timeOrigin + performance.now();
export const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Percentile (nearest-rank) of an array of numbers; NaN when empty. */
export function pct(values, p) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

export const mean = (v) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);

/** Jain's fairness index: (Σx)² / (n·Σx²), 1 = perfectly fair. */
export function jain(values) {
  const n = values.length;
  if (!n) return NaN;
  const s = values.reduce((a, b) => a + b, 0);
  const s2 = values.reduce((a, b) => a + b * b, 0);
  return s2 === 0 ? NaN : (s * s) / (n * s2);
}

/**
 * One HTTP request with a timeout; returns { status, headers, json, ms }.
 * Network errors come back as status 0 (never thrown), so that a load loop
 * keeps its bounds.
 */
export async function req(url, { method = "GET", headers = {}, body, timeoutMs = 15_000 } = {}) {
  const t0 = performance.now();
  try {
    const res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: res.status, headers: res.headers, json, ms: performance.now() - t0 };
  } catch (e) {
    return { status: 0, headers: new Headers(), json: null, ms: performance.now() - t0, error: String(e?.message ?? e) };
  }
}

/**
 * The wait a governor 429 asks for, in ms, and where it came from: the
 * body's `retryAfterMs` (millisecond precision), else a `retry-after-ms`
 * header, else `Retry-After` seconds. null when the answer carries none
 * (e.g. a 429 passed through from Sync).
 */
export function retryHint(r) {
  if (r.json && Number.isFinite(r.json.retryAfterMs)) return { ms: r.json.retryAfterMs, source: "body.retryAfterMs" };
  const ms = Number(r.headers.get("retry-after-ms"));
  if (r.headers.get("retry-after-ms") !== null && Number.isFinite(ms)) return { ms, source: "retry-after-ms" };
  const s = Number(r.headers.get("retry-after"));
  if (r.headers.get("retry-after") !== null && Number.isFinite(s)) return { ms: s * 1000, source: "Retry-After" };
  return null;
}

/** Full-jitter exponential backoff delay (AWS "full jitter"). */
export function fullJitter(attempt, baseMs, capMs) {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

/**
 * Run `fn(i)` with `concurrency` workers over `count` items, stopping early
 * at `deadlineMs` (absolute, `now()` clock). Returns the number started.
 */
export async function pool(count, concurrency, fn, deadlineMs = Infinity) {
  let next = 0;
  const worker = async () => {
    while (next < count && now() < deadlineMs) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return next;
}

/**
 * The bare pass-through Worker (bench/passthrough.mjs) in workerd through
 * Miniflare, set up like the governor in tests/lib/harness.mjs.
 */
export async function startPassthrough(upstream) {
  const mf = new Miniflare({
    scriptPath: join(ROOT, "bench", "passthrough.mjs"),
    modules: true,
    compatibilityDate: "2025-09-01",
    host: "127.0.0.1",
    port: 0,
    bindings: { UPSTREAM: upstream },
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { url, stop: () => mf.dispose() };
}

/**
 * The JS peer (bench/peer.mjs: a Worker and a GCRA Durable Object limiter
 * called over RPC, plus a no-op object) in workerd through Miniflare, set up
 * like the pass-through Worker, with SQLite-backed objects persisted to a
 * temporary directory of its own under `persistRoot` (default: the system's
 * temporary directory; removed on stop). Limits: `limit` per
 * `periodMs`, set out of reach by the caller for an overhead measurement.
 */
export async function startPeer(upstream, { limit = 100_000, periodMs = 1000, persistRoot = tmpdir() } = {}) {
  const dir = mkdtempSync(join(persistRoot, "sync-governor-peer-"));
  const mf = new Miniflare({
    scriptPath: join(ROOT, "bench", "peer.mjs"),
    modules: true,
    compatibilityDate: "2025-09-01",
    host: "127.0.0.1",
    port: 0,
    durableObjects: {
      LIMITER: { className: "Limiter", useSQLite: true },
      NOOP: { className: "Noop", useSQLite: true },
    },
    durableObjectsPersist: dir,
    bindings: { UPSTREAM: upstream, PEER_LIMIT: String(limit), PEER_PERIOD_MS: String(periodMs) },
  });
  try {
    const url = (await mf.ready).toString().replace(/\/$/, "");
    return {
      url,
      persistDir: dir,
      async stop() {
        await mf.dispose();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await mf.dispose().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

export const fmt = (v, digits = 1) =>
  v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits);

/**
 * The Rust floor fixture (bench/floor, built by scripts/build-floor.sh into
 * bench/floor/build): a trivial web_sys Worker and a no-op Rust object over
 * RPC or fetch, in workerd through Miniflare like the JS peer. Null when it
 * is not built.
 */
export async function startFloor({ persistRoot = tmpdir() } = {}) {
  const build = join(ROOT, "bench", "floor", "build");
  if (!existsSync(join(build, "index.js"))) return null;
  const dir = mkdtempSync(join(persistRoot, "sync-governor-floor-"));
  const mf = new Miniflare({
    scriptPath: join(build, "index.js"),
    modulesRoot: build,
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2025-09-01",
    host: "127.0.0.1",
    port: 0,
    durableObjects: { FLOOR: { className: "Floor", useSQLite: true } },
    durableObjectsPersist: dir,
  });
  try {
    const url = (await mf.ready).toString().replace(/\/$/, "");
    return {
      url,
      async stop() {
        await mf.dispose();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await mf.dispose().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
