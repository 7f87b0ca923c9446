// Shared setup of the spend tests (budgets, the ledger, the dashboard's
// Clients card): one managed account `acme` with two client keys, Sync's
// price list, and creates whose output length the simulator is told, so
// what a job costs is known in advance.
import { generateBody, govCall, SIM_KEY } from "./harness.mjs";
import { setup } from "./e2e.mjs";

/** The simulator's price of lipsync-2, USD per output second. */
export const PRICE = 0.04;

/**
 * The simulator and the governor for account `acme` with the client keys
 * `keys` ({ clientName: key }), six permits, local mode and PRICES; `vars`
 * add or override wrangler vars, `simFlags` the simulator's flags.
 */
export function setupSpend(keys, vars = {}, simFlags = {}) {
  const clientKeys = Object.fromEntries(Object.entries(keys).map(([client, key]) => [key, { account: "acme", client }]));
  return setup(
    { concurrency: 6, "pending-ms": 20, "processing-ms": 150, ...simFlags },
    {
      GOVERNOR_CLIENT_KEYS: JSON.stringify(clientKeys),
      SYNC_API_KEYS: JSON.stringify({ acme: SIM_KEY }),
      MAX_CONCURRENT_GENERATIONS: "6",
      LOCAL_MODE: "true",
      PRICES: JSON.stringify({ "lipsync-2": PRICE }),
      ...vars,
    },
  );
}

/** A create whose generation the simulator makes `seconds` long (inputs named by `n`). */
export const costedBody = (seconds, n = 0) =>
  generateBody({
    input: [
      { type: "video", url: `https://example.com/v${n}.mp4` },
      { type: "audio", url: `https://example.com/a${n}.wav` },
    ],
    options: { sim_output_seconds: seconds },
  });

export const costedCreate = (gov, key, seconds, n, headers = {}) =>
  govCall(gov, "/v2/generate", { method: "POST", key, body: costedBody(seconds, n), headers });
