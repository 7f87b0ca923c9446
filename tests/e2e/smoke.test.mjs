import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { startSim, startGovernor, generateBody, SIM_KEY } from "../lib/harness.mjs";

let sim, gov;
before(async () => {
  sim = await startSim({ concurrency: 1, "pending-ms": 50, "processing-ms": 300 });
  gov = await startGovernor({ SYNC_API_BASE: sim.url, SYNC_PLAN: "hobbyist" });
});
after(async () => {
  await gov?.stop();
  await sim?.stop();
});

test("a generation goes through and the next one is refused with Retry-After", async () => {
  const create = () =>
    fetch(`${gov.url}/v2/generate`, {
      method: "POST",
      headers: { "x-api-key": SIM_KEY, "content-type": "application/json" },
      body: JSON.stringify(generateBody()),
    });
  const first = await create();
  assert.equal(first.status, 201);
  const second = await create();
  assert.equal(second.status, 429);
  assert.ok(Number(second.headers.get("retry-after")) >= 1);
  const stats = await sim.stats();
  assert.equal(stats.totals.requests.generate, 1);
});
