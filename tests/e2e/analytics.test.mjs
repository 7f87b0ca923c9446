// Workers Analytics Engine output (docs/operations.md, "Analytics Engine"):
// with a METRICS binding, one data point per decision in the documented
// layout, whatever LOG_LEVEL says; a write that throws changes nothing for
// the client. Without the binding (every other e2e file) nothing is written.
//
// Miniflare's own analyticsEngineDatasets binding drops every point, so
// METRICS here is a wrapped binding (a module run inside the governor's
// isolate, like the real one) that prints each point as one stdout line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { govCall, until, generateBody, sha256, SIM_KEY } from "../lib/harness.mjs";
import { setup as start } from "../lib/e2e.mjs";

const ACCOUNT = `k-${sha256(`sync-governor/v1/${SIM_KEY}`).slice(0, 32)}`;
const MARK = "METRICS_POINT ";
const RECORDER = `export default function (env) {
  return {
    writeDataPoint(point) {
      if (env.throws) throw new Error("dataset unavailable");
      console.log(${JSON.stringify(MARK)} + JSON.stringify(point));
    },
  };
}`;

async function setup(vars, { throws = false } = {}) {
  const logs = [];
  const { gov } = await start(
    {},
    { GOVERNOR_WEBHOOK_KEY: "analytics-test-webhook-key-0123", GENERATE_PER_MINUTE: 1, ...vars },
    {
      logs,
      workerOptions: { wrappedBindings: { METRICS: { scriptName: "metrics-recorder", bindings: { throws } } } },
      workers: [{ name: "metrics-recorder", modules: [{ type: "ESModule", path: "recorder.mjs", contents: RECORDER }] }],
    },
  );
  return { gov, logs };
}

const points = (logs) => logs.filter((l) => l.includes(MARK)).map((l) => JSON.parse(l.slice(l.indexOf(MARK) + MARK.length)));

test("one data point per decision, in the documented layout, with LOG_LEVEL=off", async () => {
  const { gov, logs } = await setup({ LOG_LEVEL: "off" });
  const created = await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() });
  assert.equal(created.status, 201);
  assert.equal((await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() })).status, 429);
  assert.equal((await govCall(gov, "/v2/generations")).status, 200);
  await until("three data points", async () => points(logs).length >= 3);
  // A barrier instead of a quiet period: one more decision, whose point is
  // printed after every point of the three before it (one isolate, in order).
  assert.equal((await govCall(gov, "/v2/generations?barrier=1")).status, 200);
  await until("the barrier's data point", async () => points(logs).length >= 4);
  const all = points(logs);
  assert.equal(all.length, 4, `one point per decision, none late: ${JSON.stringify(all)}`);
  const written = all.slice(0, 3);
  for (const p of written) {
    assert.deepEqual(Object.keys(p).sort(), ["blobs", "doubles", "indexes"]);
    assert.deepEqual(p.indexes, [ACCOUNT]);
    assert.equal(p.blobs.length, 6);
    assert.equal(p.doubles.length, 3);
    assert.ok(p.doubles.every((d) => typeof d === "number" && d >= 0));
    assert.ok(p.blobs[1].length > 0 && p.blobs[1] === written[0].blobs[1], "one client");
    assert.ok(!JSON.stringify(p).includes(SIM_KEY), "a data point carries the key");
  }
  // blobs: account, client, class, outcome, reason, generationId; doubles: waitMs, upstreamStatus, addedLatencyMs.
  const [admitted, refused, read] = written;
  assert.deepEqual(admitted.blobs.slice(0, 5), [ACCOUNT, admitted.blobs[1], "generate", "admitted", ""]);
  assert.equal(admitted.blobs[5], created.json.id);
  assert.deepEqual(admitted.doubles.slice(0, 2), [0, 201]);
  assert.deepEqual(refused.blobs, [ACCOUNT, admitted.blobs[1], "generate", "refused", "rate", ""]);
  assert.deepEqual(refused.doubles, [0, 0, 0]);
  assert.deepEqual(read.blobs, [ACCOUNT, admitted.blobs[1], "other", "admitted", "", ""]);
  assert.equal(read.doubles[1], 200);
  assert.ok(!logs.some((l) => l.includes('"event":"decision"')), "LOG_LEVEL=off writes no decision line");
});

test("a dataset whose writes throw changes nothing for the client", async () => {
  const { gov, logs } = await setup({ LOG_LEVEL: "info" }, { throws: true });
  assert.equal((await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() })).status, 201);
  assert.equal((await govCall(gov, "/v2/generate", { method: "POST", body: generateBody() })).status, 429);
  assert.equal((await govCall(gov, "/v2/generations")).status, 200);
  await until("the decision lines", async () => logs.filter((l) => l.includes('"event":"decision"')).length >= 3);
  assert.equal(points(logs).length, 0);
});
