// A fresh deployment with no secrets (issue 10, finding 3): callbacks, the
// relay and the queue work out of the box on a deployment key drawn once and
// kept by a singleton object; durations are learned from status reads.
// Tickets (finding 8): 128 random bits, owned by their client in managed
// mode; the queue's Sync Idempotency-Key namespace is reserved. A key still
// in flight answers 409 with Retry-After (finding 6).
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateBody, SIM_KEY, until, govCall } from "../lib/harness.mjs";
import { setup as start, receiver, status, waitFor } from "../lib/e2e.mjs";


/** The governor with no GOVERNOR_WEBHOOK_KEY (and no other secret). */
const setup = (simFlags = {}, vars = {}) =>
  start({ concurrency: 1, "generate-per-minute": 10_000, "pending-ms": 20, "processing-ms": 600, ...simFlags }, {
    MAX_CONCURRENT_GENERATIONS: "1",
    GENERATE_PER_MINUTE: "10000",
    REQUESTS_PER_MINUTE: "100000",
    LOCAL_MODE: "true",
    ...vars,
  });

const call = govCall;

const RANDOM_TICKET = /^tk_[0-9a-f]{32}$/;

test("no secrets set: callbacks, the relay and the queue work, and the deployment key survives a restart", async () => {
  // Sync sends each webhook once (no retries): the direct generation must end
  // after the restart below is over, or its webhook meets a runtime that is
  // down. 6 s covers a restart on a loaded 2-core machine.
  const { sim, gov } = await setup({ "processing-ms": 6_000 });
  const hook = await receiver();
  // A direct create: its webhookUrl is the governor's callback, and Sync's
  // webhook reaches the client's own URL through the relay.
  const first = await call(gov, "/v2/generate", { method: "POST", body: generateBody({ webhookUrl: `${hook.url}/direct` }) });
  assert.equal(first.status, 201, first.text);
  assert.match(first.json.webhookUrl, /\/governor\/v1\/webhook\//, "the callback points at the governor");
  // The cap is full now: respond-async queues (202), it is not a 400.
  const queued = await call(gov, "/v2/generate", {
    method: "POST",
    body: generateBody({ webhookUrl: `${hook.url}/queued` }),
    headers: { prefer: "respond-async" },
  });
  assert.equal(queued.status, 202, queued.text);
  assert.equal(queued.headers.get("preference-applied"), "respond-async");
  assert.match(queued.json.id, RANDOM_TICKET);
  // A multipart upload cannot be queued: the preference is ignored (RFC 7240 §2),
  // so it is refused for concurrency like any create, never a 400.
  const form = new FormData();
  form.append("model", "lipsync-2");
  form.append("video", new Blob([Buffer.alloc(64)]), "v.mp4");
  // (A refused upload may meet a connection workerd closed: the harness's fetch sends it again.)
  const multi = await fetch(`${gov.url}/v2/generate`, {
    method: "POST",
    headers: { "x-api-key": SIM_KEY, prefer: "respond-async" },
    body: form,
  });
  await multi.text();
  assert.equal(multi.status, 429, "a preference it cannot honour is ignored");
  assert.equal(multi.headers.get("preference-applied"), null);
  // A runtime restart: the queued job's sealed key and the callbacks already
  // minted must still open with the same deployment key.
  await gov.restart();
  await until("the direct generation's webhook relayed", () => hook.got.some((g) => g.path === "/direct"), 20_000);
  await until(
    "the queued job submitted and finished",
    async () => (await call(gov, `/governor/v1/queue/${queued.json.id}`)).json?.status === "COMPLETED",
    30_000,
  );
  await until("the queued generation's webhook relayed", () => hook.got.some((g) => g.path === "/queued"), 20_000);
  const status = (await call(gov, "/governor/v1/status")).json;
  assert.equal(status.concurrency.inUse, 0, "callbacks freed both permits");
  assert.ok(status.relay.delivered >= 2, JSON.stringify(status.relay));
  assert.equal((await sim.stats()).totals.created, 2);
});

test("no secrets set: a concurrency 429's Retry-After reflects generations seen ending in status reads", async () => {
  const { sim, gov } = await setup({ "pending-ms": 100, "processing-ms": 900 });
  await sim.configure({ webhook_drop_rate: 1 }); // only status reads can tell
  for (let i = 0; i < 3; i++) {
    const c = await call(gov, "/v2/generate", { method: "POST", body: generateBody() });
    assert.equal(c.status, 201, c.text);
    await until(
      "the generation seen ending",
      async () => ["COMPLETED", "FAILED"].includes((await call(gov, `/v2/generate/${c.json.id}`)).json?.status),
      10_000,
    );
    await until("its permit freed", async () => (await call(gov, "/governor/v1/status")).json.concurrency.inUse === 0, 5_000);
  }
  const learned = (await call(gov, "/governor/v1/status")).json.concurrency.expectedDurationMs;
  assert.ok(learned >= 900 && learned < 5_000, `expected duration ${learned} ms`);
  const holding = await call(gov, "/v2/generate", { method: "POST", body: generateBody() });
  assert.equal(holding.status, 201);
  const refused = await call(gov, "/v2/generate", { method: "POST", body: generateBody() });
  assert.equal(refused.status, 429);
  assert.equal(refused.json.errorCode, "concurrency_limit_exceeded");
  const retry = Number(refused.headers.get("retry-after"));
  assert.ok(retry >= 1 && retry <= 2, `Retry-After ${retry} (60 before anything was learned)`);
});

test("managed mode: a ticket is unguessable and belongs to the client that queued it", async () => {
  const A = "client-key-aaaaaaaaaaaa";
  const B = "client-key-bbbbbbbbbbbb";
  const { sim, gov } = await setup(
    { "processing-ms": 5_000 },
    {
      GOVERNOR_CLIENT_KEYS: JSON.stringify({ [A]: "shared", [B]: "shared" }),
      SYNC_API_KEYS: JSON.stringify({ shared: SIM_KEY }),
    },
  );
  const busy = await call(gov, "/v2/generate", { method: "POST", body: generateBody(), key: A });
  assert.equal(busy.status, 201, busy.text);
  const q = await call(gov, "/v2/generate", { method: "POST", body: generateBody(), key: A, headers: { prefer: "respond-async" } });
  assert.equal(q.status, 202, q.text);
  const ticket = q.json.id;
  assert.match(ticket, RANDOM_TICKET);
  // Another client of the same account cannot see or cancel it.
  assert.equal((await call(gov, `/governor/v1/queue/${ticket}`, { key: B })).status, 404);
  assert.equal((await call(gov, `/governor/v1/queue/${ticket}`, { method: "DELETE", key: B })).status, 404);
  const own = await call(gov, `/governor/v1/queue/${ticket}`, { key: A });
  assert.equal(own.status, 200);
  assert.equal(own.json.status, "QUEUED", "the other client's cancel changed nothing");
  const canceled = await call(gov, `/governor/v1/queue/${ticket}`, { method: "DELETE", key: A });
  assert.equal(canceled.status, 200);
  assert.equal(canceled.json.status, "CANCELED");
  assert.equal((await sim.stats()).totals.created, 1);
});

test("a client Idempotency-Key in the queue's namespace is refused and never reaches Sync", async () => {
  const { sim, gov } = await setup();
  const before = (await sim.requests(1000)).length;
  for (const key of ["sync-governor-tk_1_2", "Sync-Governor-x"]) {
    const r = await call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { "idempotency-key": key } });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.message, /reserved/);
  }
  assert.equal((await sim.requests(1000)).length, before, "nothing was forwarded");
  const ok = await call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { "idempotency-key": "my-sync-governor-key" } });
  assert.equal(ok.status, 201, ok.text);
});

test("a retry while the same Idempotency-Key is in flight gets 409 with Retry-After", async () => {
  const { sim, gov } = await setup({}, { MAX_CONCURRENT_GENERATIONS: "2" });
  await sim.configure({ concurrency: 2, latency_ms: 2_500 });
  const headers = { "idempotency-key": "slow-create-1" };
  const first = call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers });
  await waitFor("the first create is on its way (its permit reserved)", async () => (await status(gov)).concurrency.inUse === 1);
  const retry = await call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers });
  assert.equal(retry.status, 409, retry.text);
  assert.equal(retry.json.errorCode, "idempotency_key_in_progress");
  const after = Number(retry.headers.get("retry-after"));
  assert.ok(after >= 1 && after <= 5, `Retry-After ${retry.headers.get("retry-after")}`);
  assert.ok(retry.json.retryAfterMs > 0);
  const done = await first;
  assert.equal(done.status, 201, done.text);
  await sim.configure({ latency_ms: 0 });
  const replay = await call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers });
  assert.equal(replay.status, 201);
  assert.equal(replay.json.id, done.json.id);
});
