// Issue 19 (hostile review of the operations work), the findings where the
// runtime is part of it, through real workerd: a callback URL bound to its
// own generation (finding 3, signature checks off), a queued body past the
// store's cap (finding 2: 413, never fail-open, no bodiless job), and an
// unknown create outcome ends at the first complete listing after it
// (finding 11), keys Sync refuses leave no durable state and the scrape
// reads every account (finding 5), an object that fails on a request is
// never a reason to forward it, and a failed command leaves none of its
// rows (finding 2).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSim, startGovernor, govCall, generateBody, until, SIM_KEY } from "../lib/harness.mjs";
import { durableObjects, editObjects } from "../lib/persisted.mjs";

const WEBHOOK_KEY = "issue19-webhook-key-0123456789abcdef";
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function sim(flags = {}) {
  const s = await startSim(flags);
  cleanup.push(() => s.stop());
  return s;
}

async function governor(vars, opts) {
  const g = await startGovernor(vars, opts);
  cleanup.push(() => g.stop());
  return g;
}

/** A loopback HTTP server; `answer(req, body)` → [status, headers, body]. Records every hit. */
async function server(answer = () => [204, {}, ""]) {
  const got = [];
  const s = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      got.push({ method: req.method, path: req.url, body });
      const [status, headers, out] = answer(req, body);
      res.writeHead(status, headers).end(out);
    });
  });
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  cleanup.push(() => new Promise((r) => s.close(r)));
  return { url: `http://127.0.0.1:${s.address().port}`, got };
}

const postCallback = (url, body) =>
  fetch(url, { method: "POST", body, headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(10_000) });

test("finding 3: a callback URL frees only its own generation's permit and swallows no other client's webhook (signatures off)", async () => {
  const s = await sim({ concurrency: 2, "pending-ms": 50, "processing-ms": 120_000 });
  const gov = await governor({
    SYNC_API_BASE: s.url,
    MAX_CONCURRENT_GENERATIONS: "2",
    GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY,
    LOCAL_MODE: "true",
  });
  const hookA = await server();
  const hookB = await server();
  const create = async (hook) => {
    const res = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody({ webhookUrl: `${hook.url}/hook` }) });
    assert.equal(res.status, 201, res.text);
    const seen = await (await fetch(`${s.url}/_sim/generations/${res.json.id}`)).json();
    return { gen: res.json, callback: seen.generation.webhookUrl };
  };
  const a = await create(hookA);
  const b = await create(hookB);
  // A's callback URL (readable wherever A's generation is) posts B's id.
  const forged = await postCallback(a.callback, JSON.stringify({ ...b.gen, status: "COMPLETED" }));
  assert.ok(forged.status >= 400 && forged.status < 500, `A's callback took B's payload: ${forged.status} ${await forged.text()}`);
  const st = (await govCall(gov, "/governor/v1/status")).json;
  assert.equal(st.concurrency.inUse, 2, "B's permit is still held while B runs");
  // B's real end, on B's own callback: B's hook gets it (not dropped as a duplicate).
  const real = await postCallback(b.callback, JSON.stringify({ ...b.gen, status: "COMPLETED" }));
  assert.equal(real.status, 200, await real.text());
  await until("B's hook gets B's end", () => hookB.got.length >= 1, 10_000);
  assert.equal(JSON.parse(hookB.got[0].body).id, b.gen.id);
  assert.equal(hookA.got.length, 0, "A's hook got no forged payload");
});

for (const mode of ["open", "closed"]) {
  test(`finding 2 (FAIL_MODE=${mode}): a queued body past the store's cap is 413 naming it, never forwarded, no bodiless job`, async () => {
    const s = await sim({ concurrency: 5, "processing-ms": 60_000 });
    const gov = await governor({
      SYNC_API_BASE: s.url,
      GENERATE_PER_MINUTE: "1",
      MAX_JSON_BODY_BYTES: String(4 << 20),
      FAIL_MODE: mode,
      GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY,
    });
    // The window's one generate: later ones would queue.
    assert.equal((await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() })).status, 201);
    const sent = (await s.stats()).totals.requests.generate;
    const big = JSON.stringify(generateBody({ pad: "x".repeat(2_500_000) }));
    const res = await govCall(gov, "/v2/generate", { method: "POST", body: big, headers: { prefer: "respond-async" } });
    assert.notEqual(res.headers.get("x-governor-decision"), "fail-open", "forwarded without a decision");
    assert.equal(res.status, 413, `${res.status} ${res.text.slice(0, 300)}`);
    assert.equal(res.json.errorCode, "payload_too_large");
    assert.match(res.json.message, /queued/);
    assert.equal((await s.stats()).totals.requests.generate, sent, "nothing more reached Sync");
    const st = (await govCall(gov, "/governor/v1/status")).json;
    assert.equal(st.queue.depth, 0, "no bodiless job left in the queue");
  });
}

test("finding 11: an unknown create outcome ends at the first complete listing after it", async () => {
  // A Sync that answers a keyed create 200 {} (no id) and lists nothing.
  const fake = await server((req) => {
    if (req.method === "POST" && req.url.startsWith("/v2/generate")) return [200, { "content-type": "application/json" }, "{}"];
    if (req.method === "GET" && req.url.startsWith("/v2/generations")) return [200, { "content-type": "application/json" }, "[]"];
    return [404, { "content-type": "application/json" }, '{"statusCode":404}'];
  });
  const gov = await governor({
    SYNC_API_BASE: fake.url,
    MAX_CONCURRENT_GENERATIONS: "1",
    RECONCILE_MIN_MS: "2000",
    RESERVATION_TTL_SECONDS: "10",
  });
  const create = (key) =>
    govCall(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { "idempotency-key": key } });
  const first = await create("unknown-outcome-1");
  assert.ok(first.status < 300, `${first.status} ${first.text}`);
  const started = Date.now();
  // Within two listing periods (and well before the reservation's 10 s), a new create is admitted.
  const admitted = await until(
    "a new create is admitted after a listing that shows nothing",
    async () => {
      const r = await create(`unknown-outcome-next-${Date.now()}`);
      return r.status < 300 ? r : null;
    },
    8_000,
  );
  assert.ok(admitted, "admitted");
  const lists = fake.got.filter((g) => g.method === "GET" && g.path.startsWith("/v2/generations")).length;
  assert.ok(lists >= 1, `listed ${lists} times in ${Date.now() - started} ms`);
});

const ADMIN_KEY = "issue19-admin-key-0123456789abcdef";
const admin = (gov, path) => govCall(gov, path, { key: null, headers: { "x-governor-admin-key": ADMIN_KEY } });

test("finding 5: keys Sync refuses leave no durable state; the first accepted answer makes a real account", async () => {
  const second = "sk-sim-second-account";
  const s = await sim({ key: [SIM_KEY, second] });
  const gov = await governor({ SYNC_API_BASE: s.url, GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY, GOVERNOR_ADMIN_KEY: ADMIN_KEY });
  assert.equal((await govCall(gov, "/v2/generations")).status, 200);
  await until("the accepted account is in the directory", async () => (await admin(gov, "/governor/v1/admin/accounts")).json?.accounts?.length === 1);
  const before = durableObjects(gov.persistDir);
  const random = Array.from({ length: 20 }, (_, i) => `sk-random-${i}-${Math.random().toString(36).slice(2)}`);
  const statuses = [];
  for (const [i, key] of random.entries()) {
    const r =
      i % 3 === 0
        ? await govCall(gov, "/v2/generations", { key })
        : await govCall(gov, "/v2/generate", {
            method: "POST",
            key,
            body: generateBody(),
            headers: i % 3 === 1 ? { "idempotency-key": `k-${i}` } : { prefer: "respond-async" },
          });
    statuses.push(r.status);
  }
  assert.deepEqual(statuses, random.map(() => 401), "Sync's 401 reaches each caller");
  const after = durableObjects(gov.persistDir);
  const added = Object.keys(after).filter((id) => !(id in before));
  assert.deepEqual(added, [], `objects that store something for refused keys: ${JSON.stringify(added.map((id) => after[id]))}`);
  for (const [id, tables] of Object.entries(before)) {
    assert.deepEqual(after[id], tables, `rows of an existing object changed: ${id}`);
  }
  assert.equal((await admin(gov, "/governor/v1/admin/accounts")).json.accounts.length, 1, "the directory lists the accepted account only");
  // A key Sync accepts: its first answer makes it a real account, which survives a restart.
  const first = await govCall(gov, "/v2/generate", { method: "POST", key: second, body: generateBody(), headers: { "idempotency-key": "second-1" } });
  assert.equal(first.status, 201, first.text);
  const real = await until("the accepted key's object stores its rows", () => {
    const now = durableObjects(gov.persistDir);
    const ids = Object.keys(now).filter((id) => !(id in before));
    return ids.length === 1 && (now[ids[0]].idempotency ?? 0) === 1 ? now[ids[0]] : null;
  }, 10_000);
  assert.ok(real.permits >= 0 && real.meta > 0, JSON.stringify(real));
  await gov.restart();
  const replay = await govCall(gov, "/v2/generate", { method: "POST", key: second, body: generateBody(), headers: { "idempotency-key": "second-1" } });
  assert.equal(replay.json?.id, first.json.id, `the idempotency record survived the restart: ${replay.status} ${replay.text}`);
});

test("finding 5: a key Sync answers with a server error or a 429 is not announced to the directory (the core's rule, as for a 401)", async () => {
  // An upstream that answers unknown keys 503 or 429 before any
  // authentication (an outage at Sync's edge, a limit in front of its auth):
  // neither proves a key.
  const accepted = new Set(["sk-known-a", "sk-known-b"]);
  let refusal = 503;
  const upstream = await server((req) =>
    accepted.has(req.headers["x-api-key"])
      ? [200, { "content-type": "application/json" }, "[]"]
      : [refusal, { "content-type": "application/json" }, JSON.stringify({ statusCode: refusal })],
  );
  const gov = await governor({ SYNC_API_BASE: upstream.url, GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY, GOVERNOR_ADMIN_KEY: ADMIN_KEY });
  const listed = async () => (await admin(gov, "/governor/v1/admin/accounts")).json?.accounts?.map((a) => a.account) ?? [];
  assert.equal((await govCall(gov, "/v2/generations", { key: "sk-known-a" })).status, 200);
  await until("the first accepted account is in the directory", async () => (await listed()).length === 1);
  for (const status of [503, 429]) {
    refusal = status;
    for (let i = 0; i < 3; i++) {
      const r = await govCall(gov, "/v2/generations", { key: `sk-unknown-${status}-${i}` });
      assert.equal(r.status, status === 503 ? 503 : 429, r.text);
    }
  }
  // An announcement sent after every one of theirs: once it is listed, theirs would be too.
  assert.equal((await govCall(gov, "/v2/generations", { key: "sk-known-b" })).status, 200);
  await until("the second accepted account is in the directory", async () => (await listed()).length >= 2);
  assert.equal((await listed()).length, 2, `the directory lists only accepted keys: ${JSON.stringify(await listed())}`);
});

test("finding 5: the metrics scrape reads every account, not the 40 most recently seen", async () => {
  const keys = Array.from({ length: 45 }, (_, i) => `sk-sim-scrape-${i}`);
  const s = await sim({ key: keys });
  const gov = await governor({ SYNC_API_BASE: s.url, GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY, GOVERNOR_ADMIN_KEY: ADMIN_KEY });
  for (const key of keys) assert.equal((await govCall(gov, "/v2/generations", { key })).status, 200);
  await until("every account is in the directory", async () => (await admin(gov, "/governor/v1/admin/accounts")).json?.accounts?.length === keys.length, 20_000);
  const scrape = await admin(gov, "/governor/v1/metrics");
  assert.equal(scrape.status, 200, scrape.text.slice(0, 300));
  const accounts = new Set([...scrape.text.matchAll(/account="(k-[0-9a-f]+)"/g)].map((m) => m[1]));
  assert.equal(accounts.size, keys.length, `accounts in the scrape: ${accounts.size}`);
  assert.match(scrape.text, /sync_governor_scrape_accounts 45\b/);
});

test("finding 2: an account object that fails on this request is never a reason to forward it (FAIL_MODE=open)", async () => {
  const s = await sim({});
  const dir = mkdtempSync(join(tmpdir(), "issue19-f2-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const vars = { SYNC_API_BASE: s.url, GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY, FAIL_MODE: "open" };
  let gov = await startGovernor(vars, { persistDir: dir });
  assert.equal((await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() })).status, 201);
  await gov.stop();
  // Stored state the object cannot write to (as a crash or an operator could leave it).
  editObjects(dir, "permits", "DROP TABLE permits; CREATE TABLE permits (id INTEGER PRIMARY KEY, row TEXT NOT NULL CHECK (id < 0));");
  gov = await governor(vars, { persistDir: dir });
  const sent = (await s.stats()).totals.requests.generate;
  const res = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() });
  assert.notEqual(res.headers.get("x-governor-decision"), "fail-open", "forwarded without a decision");
  assert.equal(res.status, 503, `${res.status} ${res.text.slice(0, 300)}`);
  assert.equal(res.json.errorCode, "governor_unavailable");
  assert.equal((await s.stats()).totals.requests.generate, sent, "nothing reached Sync");
});

test("finding 2: a command whose write fails leaves none of its rows (one transaction per command)", async () => {
  const s = await sim({});
  const dir = mkdtempSync(join(tmpdir(), "issue19-f2t-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const vars = { SYNC_API_BASE: s.url, GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY };
  let gov = await startGovernor(vars, { persistDir: dir });
  assert.equal((await govCall(gov, "/v2/generations")).status, 200);
  await gov.stop();
  // The permit is written after the create's admission rows: its failure must take them back.
  editObjects(dir, "permits", "DROP TABLE permits; CREATE TABLE permits (id INTEGER PRIMARY KEY, row TEXT NOT NULL CHECK (id < 0));");
  gov = await startGovernor(vars, { persistDir: dir });
  assert.equal((await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() })).status, 503);
  await gov.stop();
  editObjects(dir, "permits", "DROP TABLE permits;");
  gov = await governor(vars, { persistDir: dir });
  const st = (await govCall(gov, "/governor/v1/status")).json;
  const generate = st.policies.find((p) => p.name === "generate");
  assert.equal(generate.remaining, generate.quota, `the failed create's admission row stayed: ${JSON.stringify(generate)}`);
  assert.equal(st.concurrency.inUse, 0);
});
