// Shared end-to-end harness: the Sync simulator on an ephemeral loopback
// port, and the built Worker (build/index.js) in real workerd through
// Miniflare, with SQLite-backed Durable Objects persisted to a directory of
// the test's own so that a restart can prove durability.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { Miniflare } from "miniflare";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const SIM_BIN = join(ROOT, "target", "release", "sync-sim");
export const SIM_KEY = "sk-sim-local";

/** Start the simulator; `args` are CLI flags, e.g. { concurrency: 3, "window-ms": 2000 }. */
export async function startSim(args = {}) {
  const argv = ["--port", "0", "--quiet"];
  for (const [k, v] of Object.entries(args)) {
    for (const one of Array.isArray(v) ? v : [v]) argv.push(`--${k}`, String(one));
  }
  const child = spawn(SIM_BIN, argv, { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("simulator did not start in 10 s")), 10_000);
    child.once("exit", (code) => reject(new Error(`simulator exited with ${code}`)));
    createInterface({ input: child.stdout }).once("line", (line) => {
      clearTimeout(timer);
      const m = line.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      m ? resolve(m[1]) : reject(new Error(`unexpected simulator output: ${line}`));
    });
  });
  const get = async (path) => (await fetch(url + path)).json();
  const post = async (path, body) =>
    (await fetch(url + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) })).json();
  return {
    url,
    stats: () => get("/_sim/stats"),
    requests: (limit = 1000) => get(`/_sim/requests?limit=${limit}`),
    webhooks: (limit = 1000) => get(`/_sim/webhooks?limit=${limit}`),
    configure: (knobs) => post("/_sim/config", knobs),
    outside: (body) => post("/_sim/outside", body),
    reset: () => post("/_sim/reset"),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
    },
  };
}

/**
 * Start the governor in workerd. `vars` are wrangler vars/secrets (strings).
 * Returns { url, restart(), stop() }; restart() disposes the runtime and
 * starts a new one on the same persisted state (a runtime restart).
 * `scriptPath`: another build's index.js (default build/index.js), e.g. an
 * earlier release built elsewhere (bench/modes.mjs).
 * `workerOptions`: more Miniflare options for the governor (e.g. `wrappedBindings`);
 * `workers`: more Workers beside it (Miniflare's `workers`; the governor stays first and serves the URL).
 */
export async function startGovernor(vars = {}, { persistDir, logs, scriptPath, workerOptions, workers } = {}) {
  const dir = persistDir ?? mkdtempSync(join(tmpdir(), "sync-governor-do-"));
  let port = 0;
  // `logs`: an array that collects workerd's stdout and stderr lines.
  const stdio = logs
    ? {
        handleRuntimeStdio(stdout, stderr) {
          for (const s of [stdout, stderr]) createInterface({ input: s }).on("line", (l) => logs.push(l));
        },
      }
    : {};
  // `workers`: Workers beside the governor (it stays first and serves the
  // URL). The admin API and the metrics are the governor's own (one script):
  // GOVERNOR_ADMIN_KEY in `vars` enables them.
  const options = () => {
    const o = { ...single(), ...workerOptions };
    if (!workers) return o;
    const { host, port: p, durableObjectsPersist, handleRuntimeStdio, ...governor } = o;
    return { host, port: p, durableObjectsPersist, handleRuntimeStdio, workers: [{ name: "sync-governor", ...governor }, ...workers] };
  };
  const single = () => ({
    scriptPath: scriptPath ?? join(ROOT, "build", "index.js"),
    // Module names are relative to the working directory unless a root is given (and may not use "..").
    ...(scriptPath ? { modulesRoot: dirname(scriptPath) } : {}),
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2025-09-01",
    compatibilityFlags: ["enable_request_signal"],
    host: "127.0.0.1",
    port,
    durableObjects: { ACCOUNTS: { className: "AccountObject", useSQLite: true } },
    durableObjectsPersist: dir,
    // No static assets: the dashboard and the OpenAPI document are compiled into the Worker (src/assets.rs), as in wrangler.toml.
    bindings: Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, String(v)])),
    ...stdio,
  });
  let mf = new Miniflare(options());
  let url = (await mf.ready).toString().replace(/\/$/, "");
  // A restart keeps the address, as a deployment does (Sync's callbacks point at it).
  port = Number(new URL(url).port);
  const gov = {
    get url() {
      return url;
    },
    persistDir: dir,
    async restart() {
      await mf.dispose();
      mf = new Miniflare(options());
      url = (await mf.ready).toString().replace(/\/$/, "");
      return url;
    },
    async stop({ keepState = false } = {}) {
      await mf.dispose();
      if (!keepState && !persistDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return gov;
}

/**
 * The governor with its ACCOUNTS binding pointed at an object that always
 * throws (an injected object failure: a second script serves the class).
 * Returns { url, stop() }.
 */
export async function startBrokenGovernor(vars = {}) {
  const thrower = `export class Broken { async fetch() { throw new Error("injected object failure"); } }
export default { fetch() { return new Response("thrower"); } };`;
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    workers: [
      {
        name: "governor",
        scriptPath: join(ROOT, "build", "index.js"),
        modules: true,
        modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
        compatibilityDate: "2025-09-01",
        compatibilityFlags: ["enable_request_signal"],
        durableObjects: { ACCOUNTS: { className: "Broken", scriptName: "thrower", useSQLite: true } },
        bindings: Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, String(v)])),
      },
      { name: "thrower", modules: true, script: thrower, compatibilityDate: "2025-09-01" },
    ],
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { url, stop: () => mf.dispose() };
}

/** A minimal valid generate body. */
export function generateBody(extra = {}) {
  return {
    model: "lipsync-2",
    input: [
      { type: "video", url: "https://example.com/video.mp4" },
      { type: "audio", url: "https://example.com/audio.wav" },
    ],
    ...extra,
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Helpers for the e2e tests (additive; everything above is unchanged).
import { createHash } from "node:crypto";
import http from "node:http";

/** Hex SHA-256 of a string or bytes. */
export const sha256 = (data) => createHash("sha256").update(data).digest("hex");

/**
 * `fetch`, sent again when the connection it took was already closed by the
 * server. workerd closes a connection after answering a request whose body
 * it did not read (a refusal answered before the upload), and undici may hand
 * that dead socket to the next request, which then fails before any byte
 * reaches the server (`UND_ERR_SOCKET` "other side closed", `ECONNRESET`,
 * `EPIPE`): sending it again is safe. Any other failure, and any request
 * whose body is a stream (it cannot be sent twice), is thrown as is.
 * Installed as the global `fetch` of every test that imports this harness.
 */
const nativeFetch = globalThis.fetch;
export async function fetchFresh(url, init) {
  const once = !!init?.body && typeof init.body.getReader === "function";
  for (let attempt = 1; ; attempt++) {
    try {
      return await nativeFetch(url, init);
    } catch (e) {
      const code = e?.cause?.code;
      if (once || attempt >= 3 || !["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"].includes(code)) throw e;
    }
  }
}
globalThis.fetch = fetchFresh;

/**
 * One request to the governor (or any loopback URL) with a timeout.
 * `body`: object → JSON (content-type set), string/Buffer → as is.
 * Returns { status, headers, text, json } (json null when not JSON).
 */
export async function call(base, path, { method = "GET", key, body, headers = {}, timeoutMs = 15_000 } = {}) {
  const h = { ...headers };
  if (key !== undefined) h["x-api-key"] = key;
  let payload = body;
  if (body !== undefined && body !== null && typeof body === "object" && !Buffer.isBuffer(body) && !(body instanceof Uint8Array)) {
    payload = JSON.stringify(body);
    if (!Object.keys(h).some((k) => k.toLowerCase() === "content-type")) h["content-type"] = "application/json";
  }
  const res = await fetch(base + path, { method, headers: h, body: payload, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * A raw HTTP/1.1 request through node:http (headers that fetch() refuses to
 * send, exact paths, chunked bodies). Returns { status, headers, text, json }.
 */
export function rawRequest(base, path, { method = "GET", headers = {}, body, timeoutMs = 15_000 } = {}) {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method, path, headers, timeout: timeoutMs, agent: false },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, text, json });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`raw request timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    if (Array.isArray(body)) {
      for (const part of body) req.write(part);
      req.end();
    } else {
      req.end(body);
    }
  });
}

/** The simulator's logged requests (not /_sim/*), oldest first. */
export async function simLog(sim) {
  return sim.requests(1000);
}

/** Poll `fn` every 50 ms until it is truthy; fail after `timeoutMs`. */
export async function until(what, fn, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * One request to a running governor (`gov.url`) as a client of the
 * simulator's account: `x-api-key` is SIM_KEY unless `key` says otherwise
 * (`null`: none); an object body is sent as JSON. Returns
 * { status, headers, json (undefined when not JSON), text, ms }.
 */
export async function govCall(gov, path, { method = "GET", body, headers = {}, key = SIM_KEY, timeoutMs = 60_000 } = {}) {
  const started = Date.now();
  const h = { "content-type": "application/json", ...headers };
  if (key !== null) h["x-api-key"] = key;
  const r = await fetch(`${gov.url}${path}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, json, text, ms: Date.now() - started };
}

/** A free loopback TCP port (bound once and released). */
export async function freePort() {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * The one config (wrangler.toml) under a plain `wrangler dev`, as an operator
 * runs it: its [build] command builds the Worker, `vars` become `--var
 * NAME:VALUE`, Durable Object state goes to a directory of its own, and the
 * process runs in a process group of its own with its own `--inspector-port`
 * (two `wrangler dev` at once would collide on 9229). Resolves once
 * `/governor/v1/health` answers 200 (within `timeoutMs`, the build
 * included). Returns { url, logs, stop() }; stop() ends the whole process
 * group (wrangler and the workerd it started) and removes the state.
 */
export async function startWranglerDev(vars = {}, { timeoutMs = 300_000, persistDir } = {}) {
  const dir = persistDir ?? mkdtempSync(join(tmpdir(), "sync-governor-dev-"));
  const [port, inspector] = [await freePort(), await freePort()];
  const args = ["--no-install", "wrangler", "dev", "-c", join(ROOT, "wrangler.toml"), "--ip", "127.0.0.1", "--port", String(port),
    "--inspector-port", String(inspector), "--persist-to", dir, "--log-level", "warn"];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = spawn("npx", args, { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
  const logs = [];
  for (const s of [child.stdout, child.stderr]) createInterface({ input: s }).on("line", (l) => logs.push(l));
  const exited = new Promise((r) => child.once("exit", r));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {}
      }, 10_000);
      await exited;
      clearTimeout(t);
    }
    // workerd may outlive wrangler for a moment: end the group once more.
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
    if (!persistDir) rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`wrangler dev exited with ${child.exitCode}:\n${logs.slice(-30).join("\n")}`);
    }
    try {
      const r = await nativeFetch(`${url}/governor/v1/health`, { signal: AbortSignal.timeout(2_000) });
      if (r.status === 200) break;
    } catch {}
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer in ${timeoutMs} ms:\n${logs.slice(-30).join("\n")}`);
    }
    await sleep(250);
  }
  return { url, logs, stop };
}
