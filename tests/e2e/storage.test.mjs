// The account as SQLite rows (issue 9), through the real runtime against the
// simulator: thousands of idempotency records and a queue far larger than an
// isolate's memory stay within their bounds, survive a restart, and never
// turn into a 5xx.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSim, startGovernor, generateBody, SIM_KEY, until, ROOT, govCall } from "../lib/harness.mjs";

const WEBHOOK_KEY = "governor-webhook-key-for-tests";
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const call = govCall;

/** Run `n` tasks with `width` at a time; bounded by count and by `deadline`. */
async function pool(n, width, deadline, task) {
  let next = 0;
  const results = new Array(n);
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) {
        if (Date.now() > deadline) throw new Error(`load loop passed its deadline at ${next}/${n}`);
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

/** Resident memory (KiB) of the newest workerd process this test process started (the running governor). */
function workerdRssKiB() {
  let newest = { start: -1, rss: 0 };
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (!comm.startsWith("workerd") || Number(fields[1]) !== process.pid) continue;
      const start = Number(fields[19]);
      const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
      if (m && start > newest.start) newest = { start, rss: Number(m[1]) };
    } catch {}
  }
  return newest.rss;
}

const pad = (n) => "p".repeat(n);

test("5,000 keyed creates with ~30 KB bodies: no 5xx, replays answer the first result, bytes within bounds", async () => {
  const sim = await startSim({
    concurrency: 100_000,
    "generate-per-minute": 1_000_000,
    "other-per-minute": 1_000_000,
    "pending-ms": 0,
    "processing-ms": 50,
  });
  const IDEM_MAX_BYTES = 4 << 20;
  const gov = await startGovernor({
    SYNC_API_BASE: sim.url,
    MAX_CONCURRENT_GENERATIONS: "10000",
    GENERATE_PER_MINUTE: "100000",
    REQUESTS_PER_MINUTE: "100000",
    IDEMPOTENCY_MAX_BYTES: String(IDEM_MAX_BYTES),
    RECONCILE_MIN_MS: "1000",
  });
  cleanup.push(() => sim.stop(), () => gov.stop());
  const N = Number(process.env.STORAGE_E2E_CREATES ?? 5000);
  const body = JSON.stringify(
    generateBody({ input: [{ type: "video", url: `https://example.com/v.mp4?${pad(30_000)}` }, { type: "audio", url: "https://example.com/a.wav" }] }),
  );
  assert.ok(body.length > 30_000);
  const deadline = Date.now() + 600_000;
  const statuses = new Map();
  const firsts = await pool(N, 12, deadline, async (i) => {
    const r = await call(gov, "/v2/generate", { method: "POST", body, headers: { "idempotency-key": `key-${i}` } });
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    return { status: r.status, id: r.json?.id };
  });
  assert.deepEqual([...statuses.keys()], [201], `every create answered 201: ${JSON.stringify([...statuses])}`);
  // Ordinary traffic still passes.
  for (let i = 0; i < 50; i++) {
    const r = await call(gov, "/v2/generations?limit=1");
    assert.equal(r.status, 200, r.text);
  }
  // Replays: the first answer (a 30 KB body is over the replay cap, so the
  // governor reads the same generation back from Sync), never a new create.
  const created = (await sim.stats()).totals.created;
  assert.equal(created, N);
  for (const i of [0, 1, 17, 999, N - 1].filter((i) => i < N)) {
    const r = await call(gov, "/v2/generate", { method: "POST", body, headers: { "idempotency-key": `key-${i}` } });
    assert.equal(r.status, firsts[i].status, r.text);
    assert.equal(r.json.id, firsts[i].id, "a replay answers the first generation");
    assert.equal(r.headers.get("idempotent-replayed"), "true");
  }
  assert.equal((await sim.stats()).totals.created, N, "no replay created anything");
  const status = (await call(gov, "/governor/v1/status")).json;
  const idem = status.storage.idempotency;
  assert.equal(idem.count, N);
  assert.ok(idem.bytes <= idem.maxBytes && idem.maxBytes === IDEM_MAX_BYTES, JSON.stringify(idem));
  assert.ok(idem.bytes < N * 1_000, `records hold ids, not bodies: ${idem.bytes} bytes`);
  assert.equal(status.storage.inMemory.inFlightKeys, 0);
  console.log(`# ${N} keyed creates: idempotency table ${idem.count} records, ${idem.bytes} bytes (bound ${idem.maxBytes})`);
});

test("a keyed create past the idempotency bound is a clear 429, never a 5xx; unkeyed creates still pass", async () => {
  const sim = await startSim({ concurrency: 1000, "generate-per-minute": 100_000, "pending-ms": 0, "processing-ms": 20 });
  const gov = await startGovernor({
    SYNC_API_BASE: sim.url,
    MAX_CONCURRENT_GENERATIONS: "100",
    GENERATE_PER_MINUTE: "10000",
    REQUESTS_PER_MINUTE: "100000",
    IDEMPOTENCY_MAX_RECORDS: "3",
  });
  cleanup.push(() => sim.stop(), () => gov.stop());
  for (let i = 0; i < 3; i++) {
    const r = await call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { "idempotency-key": `b-${i}` } });
    assert.equal(r.status, 201, r.text);
  }
  const full = await call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { "idempotency-key": "b-3" } });
  assert.equal(full.status, 429, full.text);
  assert.equal(full.json.errorCode, "idempotency_store_full");
  assert.ok(Number(full.headers.get("retry-after")) >= 1);
  const unkeyed = await call(gov, "/v2/generate", { method: "POST", body: generateBody() });
  assert.equal(unkeyed.status, 201);
  const replay = await call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { "idempotency-key": "b-0" } });
  assert.equal(replay.status, 201, "replays of stored keys still answer");
  assert.equal((await sim.stats()).totals.created, 4);
});

test("600 jobs × 256 KiB queued (150 MiB), a restart, then every job reaches Sync exactly once; memory stays bounded", async () => {
  const sim = await startSim({ concurrency: 1000, "generate-per-minute": 1_000_000, "pending-ms": 0, "processing-ms": 100 });
  const vars = {
    SYNC_API_BASE: sim.url,
    MAX_CONCURRENT_GENERATIONS: "50",
    // One create per window while the queue fills, so it only grows.
    GENERATE_PER_MINUTE: "1",
    REQUESTS_PER_MINUTE: "100000",
    GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY,
    LOCAL_MODE: "true",
    RECONCILE_MIN_MS: "1000",
  };
  let gov = await startGovernor(vars);
  const dir = gov.persistDir;
  cleanup.push(() => sim.stop(), () => gov.stop(), () => rmSync(dir, { recursive: true, force: true }));
  const N = Number(process.env.STORAGE_E2E_JOBS ?? 600);
  const jobBody = (i) =>
    JSON.stringify(generateBody({ outputFileName: `job-${i}`, input: [{ type: "video", url: `https://example.com/v.mp4?${pad(256 * 1024)}` }, { type: "audio", url: "https://example.com/a.wav" }] }));
  await call(gov, "/governor/v1/status");
  const rssBefore = workerdRssKiB();
  const deadline = Date.now() + 600_000;
  const tickets = await pool(N, 4, deadline, async (i) => {
    const r = await call(gov, "/v2/generate", { method: "POST", body: jobBody(i), headers: { prefer: "respond-async", "x-governor-client": `c${i % 5}` } });
    assert.ok(r.status === 202 || r.status === 201, `${r.status} ${r.text}`);
    return r.status === 202 ? r.json.id : null;
  });
  const queued = tickets.filter(Boolean);
  const status = (await call(gov, "/governor/v1/status")).json;
  const rssFull = workerdRssKiB();
  const queuedBytes = status.storage.queue.bytes;
  assert.ok(queuedBytes >= (N - 1) * 256 * 1024, `queue holds the bodies: ${queuedBytes}`);
  assert.equal(status.storage.inMemory.waitingJobs, status.queue.depth);
  // A runtime restart, now with room to drain. Loading the account reads
  // the waiting jobs' metadata, never their bodies: the new runtime's memory
  // with 150 MiB queued is that of an empty one.
  await gov.stop({ keepState: true });
  gov = await startGovernor({ ...vars, GENERATE_PER_MINUTE: "1" }, { persistDir: gov.persistDir });
  const restarted = (await call(gov, "/governor/v1/status")).json;
  const rssLoaded = workerdRssKiB();
  const mib = (k) => (k / 1024).toFixed(0);
  console.log(
    `# ${queued.length} queued, ${(queuedBytes / 2 ** 20).toFixed(0)} MiB of bodies in SQLite; workerd RSS: fresh ${mib(rssBefore)} MiB, ` +
      `after enqueuing ${mib(rssFull)} MiB, restarted and loaded ${mib(rssLoaded)} MiB`,
  );
  const loadedGrowth = (rssLoaded - rssBefore) / 1024;
  assert.ok(loadedGrowth < queuedBytes / 2 ** 20 / 4, `loading the account grew memory by ${loadedGrowth.toFixed(0)} MiB`);
  await gov.stop({ keepState: true });
  gov = await startGovernor({ ...vars, GENERATE_PER_MINUTE: "100000" }, { persistDir: gov.persistDir });
  assert.ok(restarted.queue.depth >= queued.length - 50, `the queue survived the restart: ${restarted.queue.depth}`);
  await until(
    "every job created at Sync",
    async () => (await sim.stats()).totals.created >= N,
    300_000,
  );
  await until("the queue drained", async () => (await call(gov, "/governor/v1/status")).json.queue.depth === 0, 60_000);
  const stats = await sim.stats();
  assert.equal(stats.totals.created, N, "each job created exactly once at Sync");
  assert.equal(stats.totals.concurrency_limited, 0);
  const seen = new Set();
  for (const t of queued.slice(0, 40)) {
    const v = await call(gov, `/governor/v1/queue/${t}`);
    assert.equal(v.status, 200);
    assert.ok(["SUBMITTED", "COMPLETED"].includes(v.json.status), `${t}: ${v.json.status}`);
    seen.add(v.json.generationId);
  }
  assert.equal(seen.size, Math.min(40, queued.length));
  const after = (await call(gov, "/governor/v1/status")).json;
  assert.ok(after.storage.queue.bytes === 0, "no body left once submitted");
});

test("an account written by the previous release's layout loads under this one and its queue still runs exactly once", async () => {
  const fixture = join(ROOT, "tests", "fixtures", "legacy-v0");
  const expected = JSON.parse(readFileSync(join(fixture, "expected.json"), "utf8"));
  const dir = mkdtempSync(join(tmpdir(), "sync-governor-legacy-"));
  cpSync(join(fixture, "persist"), dir, { recursive: true });
  const sim = await startSim({ concurrency: 10, "generate-per-minute": 10_000, "pending-ms": 0, "processing-ms": 100 });
  const gov = await startGovernor({ ...expected.vars, SYNC_API_BASE: sim.url, RECONCILE_MIN_MS: "1000" }, { persistDir: dir });
  cleanup.push(() => sim.stop(), () => gov.stop(), () => rmSync(dir, { recursive: true, force: true }));
  const first = await call(gov, "/governor/v1/status");
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.storage.schemaVersion, 2);
  // The old generations are unknown to this simulator: reconciliation frees
  // their permits, and the four queued jobs go, each exactly once.
  const t = expected.tickets;
  await until("the legacy queue drained", async () => (await call(gov, "/governor/v1/status")).json.queue.depth === 0, 60_000);
  await until("the legacy jobs created at Sync", async () => (await sim.stats()).totals.created >= 4, 30_000);
  const log = await sim.requests(1000);
  const keys = log.filter((e) => e.method === "POST" && /generate/i.test(e.path)).map((e) => e.headers["idempotency-key"]);
  for (const name of ["J1", "J2", "J3", "J4"]) {
    assert.equal(keys.filter((k) => k === `sync-governor-${t[name]}`).length, 1, `${name} reached Sync exactly once`);
    const v = await call(gov, `/governor/v1/queue/${t[name]}`);
    assert.ok(["SUBMITTED", "COMPLETED"].includes(v.json.status), `${name}: ${v.json.status}`);
  }
  assert.equal((await sim.stats()).totals.created, 4, "nothing else was created");
  assert.equal((await call(gov, `/governor/v1/queue/${t.J5}`)).json.status, "CANCELED");
  assert.equal((await call(gov, `/governor/v1/queue/${t.Q0}`)).json.status, "COMPLETED");
});
