// Sync's Batch API through the governor (issue 18): batch permits taken at
// admission and held until the batch is terminal, freed by reads passing
// through and by the governor's own listing of Sync's batches even when
// every batch webhook is lost; batch-spawned generations never adopted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SIM_KEY, until } from "../lib/harness.mjs";
import { setup as setupGovernor } from "../lib/e2e.mjs";

async function setup(simFlags = {}, knobs = {}, vars = {}) {
  const { sim, gov } = await setupGovernor(
    { concurrency: 3, "pending-ms": 50, "processing-ms": 300, "batch-concurrency": 2, ...simFlags },
    {
      MAX_CONCURRENT_GENERATIONS: "3",
      MAX_CONCURRENT_BATCHES: "2",
      LOCAL_MODE: "true",
      RECONCILE_MIN_MS: "400",
      RECONCILE_MAX_MS: "1600",
      MAX_WAIT_SECONDS: "60",
      ...vars,
    },
  );
  await sim.configure({ batch_pending_ms: 100, batch_generation_ms: 600, ...knobs });
  return { sim, gov };
}

function jsonl(n, tag, options = {}) {
  let out = "";
  for (let i = 0; i < n; i++) {
    const payload = {
      model: "lipsync-2",
      input: [{ type: "video", url: `https://example.com/${tag}-${i}.mp4` }, { type: "audio", url: "https://example.com/a.wav" }],
      options,
    };
    out += JSON.stringify({ request_id: `${tag}-${i}`, endpoint: "/v2/generate", payload }) + "\n";
  }
  return out;
}

/** POST /v2/batch through the governor (multipart, as Sync takes it). */
async function submit(gov, tag, { lines = 20, headers = {}, webhook, options } = {}) {
  const form = new FormData();
  form.append("input", new Blob([jsonl(lines, tag, options)], { type: "application/jsonl" }), "batch.jsonl");
  if (webhook) form.append("webhook_url", webhook);
  const r = await fetch(`${gov.url}/v2/batch`, {
    method: "POST",
    headers: { "x-api-key": SIM_KEY, ...headers },
    body: form,
    signal: AbortSignal.timeout(90_000),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, json, text };
}

const status = async (gov) =>
  (await fetch(`${gov.url}/governor/v1/status`, { headers: { "x-api-key": SIM_KEY } })).json();

const sim429s = async (sim) => (await sim.requests(1000)).filter((r) => r.status === 429);

test("batches beyond the batch concurrency: Sync never answers 429; permits end with every batch webhook lost", async () => {
  const { sim, gov } = await setup({}, { batch_webhook_drop_rate: 1.0 });
  // Without Prefer: two go, the rest get the governor's 429 with Retry-After.
  const quick = await Promise.all([0, 1, 2, 3].map((i) => submit(gov, `q${i}`, { webhook: "https://example.com/hook" })));
  const codes = quick.map((r) => r.status).sort();
  assert.deepEqual(codes, [201, 201, 429, 429], JSON.stringify(quick.map((r) => r.text)));
  for (const r of quick.filter((r) => r.status === 429)) {
    assert.ok(Number(r.headers.get("retry-after")) >= 1, "an honest Retry-After");
    assert.notEqual(r.json?.errorCode, "concurrency_limit_reached", "the governor's refusal, not Sync's");
  }
  // With Prefer: wait, six more batches are held and go as batches end.
  const held = await Promise.all(
    [0, 1, 2, 3, 4, 5].map((i) => submit(gov, `w${i}`, { headers: { prefer: "wait=60" }, webhook: "https://example.com/hook" })),
  );
  assert.deepEqual(
    held.map((r) => r.status),
    [201, 201, 201, 201, 201, 201],
    JSON.stringify(held.map((r) => r.text)),
  );
  // Every batch webhook was lost; the permits still end with the batches.
  const st = await until("batch permits to end", async () => {
    const s = await status(gov);
    return s.batches.inUse === 0 && s;
  }, 60_000);
  assert.equal(st.batches.limit, 2);
  const stats = await sim.stats();
  const k = stats.keys[SIM_KEY];
  assert.equal(k.batches_created, 8);
  assert.equal(k.batch_concurrency_limited, 0, "Sync never refused a batch for its concurrency");
  assert.deepEqual(await sim429s(sim), [], "Sync answered no 429 at all");
  const hooks = await sim.webhooks(1000);
  assert.ok(hooks.filter((h) => h.kind === "batch" && h.dropped).length >= 8 * 3);
  assert.equal(hooks.filter((h) => h.kind === "batch" && !h.dropped).length, 0);
  // Every batch Sync had is terminal.
  const list = await (await fetch(`${gov.url}/v2/batch`, { headers: { "x-api-key": SIM_KEY } })).json();
  assert.equal(list.length, 8);
  assert.ok(list.every((b) => b.status === "COMPLETED"), JSON.stringify(list.map((b) => b.status)));
});

test("a batch result's redirect goes back to the client (the key never follows it), and frees the permit", async () => {
  const { gov } = await setup({}, { batch_webhook_drop_rate: 1.0, batch_generation_ms: 100 }, { RECONCILE_MIN_MS: "60000", RECONCILE_MAX_MS: "60000" });
  const b = await submit(gov, "r");
  assert.equal(b.status, 201);
  const id = b.json.id;
  assert.equal((await status(gov)).batches.inUse, 1);
  await until("the batch to end", async () => {
    const r = await fetch(`${gov.url}/v2/batches/${id}/result`, { headers: { "x-api-key": SIM_KEY }, redirect: "manual" });
    if (r.status !== 302) return false;
    const loc = r.headers.get("location");
    assert.match(loc, /X-Amz-Signature=/);
    const rows = (await (await fetch(loc)).text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(rows.length, 20);
    assert.ok(rows.every((row) => row.status === "COMPLETED" && row.generation_id));
    return true;
  }, 20_000);
  // The redirect passing through said the batch ended (no listing ran).
  await until("the permit to end", async () => (await status(gov)).batches.inUse === 0);
});

test("while batches run, direct creates keep the full generation cap (no spawned generation adopted)", async () => {
  const { sim, gov } = await setup({}, { batch_generation_ms: 8_000 });
  assert.equal((await submit(gov, "long")).status, 201);
  await until("the batch's 20 generations to run", async () => (await sim.stats()).keys[SIM_KEY].batch_active === 20);
  // Let reconciliation list Sync's generations (20 unknown active ones) a few times.
  const runs = (await status(gov)).reconcile.runs;
  await until("two reconciliation runs", async () => (await status(gov)).reconcile.runs >= runs + 2, 20_000);
  const st = await status(gov);
  assert.equal(st.concurrency.inUse, 0, JSON.stringify(st.concurrency));
  assert.equal(st.batches.spawnedPending, 20);
  const creates = await Promise.all(
    [0, 1, 2].map(() =>
      fetch(`${gov.url}/v2/generate`, {
        method: "POST",
        headers: { "x-api-key": SIM_KEY, "content-type": "application/json" },
        body: JSON.stringify({ model: "lipsync-2", input: [{ type: "video", url: "https://example.com/v.mp4" }] }),
      }),
    ),
  );
  assert.deepEqual(creates.map((r) => r.status), [201, 201, 201], "the full cap of 3 for direct creates");
  assert.equal((await status(gov)).concurrency.inUse, 3);
  assert.deepEqual(await sim429s(sim), []);
});

test("a dry run, a refused batch and a plan without batches (402) free the batch permit at once", async () => {
  const { sim, gov } = await setup({}, {}, { RECONCILE_MIN_MS: "60000", RECONCILE_MAX_MS: "60000" });
  const form = new FormData();
  form.append("input", new Blob([jsonl(20, "dry")]), "batch.jsonl");
  form.append("dry_run", "true");
  const dry = await fetch(`${gov.url}/v2/batch`, { method: "POST", headers: { "x-api-key": SIM_KEY }, body: form });
  assert.equal(dry.status, 200);
  assert.deepEqual(await dry.json(), { status: "VALIDATED" });
  assert.equal((await status(gov)).batches.inUse, 0);
  assert.equal((await submit(gov, "few", { lines: 19 })).status, 400);
  assert.equal((await status(gov)).batches.inUse, 0);
  await sim.configure({ batches_enabled: false });
  for (let i = 0; i < 3; i++) {
    const r = await submit(gov, `p${i}`);
    assert.equal(r.status, 402, r.text);
    assert.equal(r.json.errorCode, "plan_upgrade_required");
  }
  const st = await status(gov);
  assert.equal(st.batches.inUse, 0, "no listing ran: each answer freed its permit");
  assert.equal(st.batches.freed, 5);
});
