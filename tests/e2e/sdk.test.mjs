// The official TypeScript SDK, pointed at the governor by its base URL only,
// creates a generation and reads it back; the simulator saw exactly those
// requests, with the SDK's own headers and the key it was given.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { SyncClient } from "@sync.so/sdk";
import { startSim, startGovernor, sha256, SIM_KEY } from "../lib/harness.mjs";
import { waitFor } from "../lib/e2e.mjs";

let sim, gov;
before(async () => {
  sim = await startSim({ concurrency: 3, "pending-ms": 50, "processing-ms": 200 });
  gov = await startGovernor({ SYNC_API_BASE: sim.url, SYNC_PLAN: "creator" });
});
after(async () => {
  await gov?.stop();
  await sim?.stop();
});

test("the SDK creates a generation through the governor and fetches it", async () => {
  const client = new SyncClient({ baseUrl: gov.url, apiKey: SIM_KEY });
  const opts = { maxRetries: 0, timeoutInSeconds: 15 };
  const request = {
    model: "lipsync-2",
    input: [
      { type: "video", url: "https://example.com/sdk-video.mp4" },
      { type: "audio", url: "https://example.com/sdk-audio.wav" },
    ],
    options: { sync_mode: "loop" },
  };
  const created = await client.generations.create(request, opts);
  assert.ok(created.id, "the SDK returned a generation id");
  assert.equal(created.model, "lipsync-2");
  assert.ok(["PENDING", "PROCESSING"].includes(created.status), created.status);

  // Poll with the SDK until it ends (bounded).
  const got = await waitFor("the generation ends", async () => {
    const g = await client.generations.get(created.id, opts);
    assert.equal(g.id, created.id);
    return ["COMPLETED", "FAILED", "REJECTED"].includes(g.status) && g;
  });
  assert.equal(got.status, "COMPLETED");
  assert.ok(got.outputUrl, "a completed generation has an output URL");

  // The simulator saw exactly one create and then only GETs of that id.
  const log = await sim.requests(1000);
  assert.ok(log.length >= 2);
  const [first, ...rest] = log;
  assert.equal(first.method, "POST");
  assert.equal(first.path, "/v2/generate");
  assert.equal(first.status, 201);
  assert.equal(first.key_index, 0, "the simulator recognised the SDK's key");
  assert.equal(first.headers["x-api-key"], "sk-s…");
  assert.equal(first.headers["x-fern-sdk-name"], "@sync.so/sdk");
  assert.match(first.headers["content-type"], /application\/json/);
  assert.deepEqual(JSON.parse(JSON.stringify(request)), request);
  // The body the SDK serialised is what the simulator hashed, with the
  // governor's callback as webhookUrl (the relay is on by default).
  const seen = await (await fetch(`${sim.url}/_sim/generations/${created.id}`)).json();
  const callback = seen.generation.webhookUrl;
  assert.match(new URL(callback).pathname, /^\/governor\/v1\/webhook\//);
  assert.equal(first.body_sha256, sha256(JSON.stringify({ ...request, webhookUrl: callback })));
  for (const e of rest) {
    assert.equal(`${e.method} ${e.path}`, `GET /v2/generate/${created.id}`);
    assert.equal(e.status, 200);
  }
  // One simulator request per SDK call: no retries, nothing extra.
  const stats = await sim.stats();
  assert.equal(stats.totals.requests.generate, 1);
  assert.equal(stats.totals.requests.other, rest.length);
  assert.equal(stats.totals.rate_limited.generate + stats.totals.rate_limited.other + stats.totals.concurrency_limited, 0);
});

test("an SDK call refused by the governor surfaces as a 429 SyncError with the governor's body", async () => {
  // Creator plan: 3 concurrent. Hold them with long generations, then a 4th is refused.
  const client = new SyncClient({ baseUrl: gov.url, apiKey: SIM_KEY });
  const opts = { maxRetries: 0, timeoutInSeconds: 15 };
  const long = { model: "lipsync-2", input: [{ type: "video", url: "https://example.com/v.mp4" }], options: { sim_duration_ms: 30_000 } };
  for (let i = 0; i < 3; i++) await client.generations.create(long, opts);
  const before = (await sim.stats()).totals.requests.generate;
  await assert.rejects(client.generations.create(long, opts), (err) => {
    assert.equal(err.statusCode, 429);
    assert.equal(err.body.errorCode, "concurrency_limit_exceeded");
    assert.ok(err.body.retryAfterMs > 0);
    return true;
  });
  const after = (await sim.stats()).totals;
  assert.equal(after.requests.generate, before, "the refused create never reached Sync");
  assert.equal(after.concurrency_limited, 0);
});
