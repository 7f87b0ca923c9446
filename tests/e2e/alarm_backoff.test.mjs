// Finding 7 of issue 10, in workerd: queued work that cannot be sent (the
// object holds no Sync key: a pass-through key not presented since a restart,
// whose sealed copy no longer opens because the webhook key changed) backs off
// instead of re-arming the alarm every millisecond, says so in status, and
// goes on at once when a client of the account brings its key again.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startSim, startGovernor, govCall, until, generateBody, sha256, SIM_KEY } from "../lib/harness.mjs";

const ADMIN = "alarm-backoff-test-admin-key-0123";
const ACCOUNT = `k-${sha256(`sync-governor/v1/${SIM_KEY}`).slice(0, 32)}`;
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test("no Sync key for queued work: the alarm backs off (reported in status), and the key's return unblocks it", async () => {
  const sim = await startSim({ concurrency: 1, "processing-ms": 60_000 });
  cleanup.push(() => sim.stop());
  const vars = {
    SYNC_API_BASE: sim.url,
    SYNC_PLAN: "hobbyist",
    QUEUE_RETRY_MS: 200,
    RECONCILE_MIN_MS: 1000,
    RECONCILE_MAX_MS: 5000,
    GOVERNOR_ADMIN_KEY: ADMIN,
  };
  const first = await startGovernor({ ...vars, GOVERNOR_WEBHOOK_KEY: "first-webhook-key-0123456789abcdef" });
  assert.equal((await govCall(first, "/v2/generate", { method: "POST", body: generateBody() })).status, 201);
  const queued = await govCall(first, "/v2/generate", { method: "POST", body: generateBody(), headers: { prefer: "respond-async" } });
  assert.equal(queued.status, 202, queued.text);
  await first.stop({ keepState: true });
  // A new runtime under another webhook key: the sealed Sync key no longer opens.
  const gov = await startGovernor({ ...vars, GOVERNOR_WEBHOOK_KEY: "second-webhook-key-0123456789abcd" }, { persistDir: first.persistDir });
  cleanup.push(() => gov.stop());
  const status = async () =>
    (await govCall(gov, `/governor/v1/admin/accounts/${ACCOUNT}`, { key: null, headers: { authorization: `Bearer ${ADMIN}` } })).json;
  // The admin read brings no key; the object's alarm finds the queue blocked.
  const blocked = await until("the queue reports no Sync key", async () => {
    const s = await status();
    return s?.queue?.blocked === "no_sync_key" ? s : null;
  }, 20_000);
  assert.equal(blocked.queue.depth, 1);
  // Backing off: the retry grows (200, 400, 800 ms, ... up to RECONCILE_MAX_MS), never a millisecond spin.
  await until("the retry backs off past 800 ms", async () => ((await status())?.queue?.blockedRetryInMs ?? 0) >= 800, 20_000);
  assert.equal((await sim.requests(1000)).filter((q) => q.method === "POST").length, 1, "nothing more was sent");
  // A client of the account brings its key: queued work may go again.
  assert.equal((await govCall(gov, "/v2/generations")).status, 200);
  await until("the block is lifted", async () => (await status())?.queue?.blocked === undefined, 10_000);
});
