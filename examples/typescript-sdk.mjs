// The official TypeScript SDK (@sync.so/sdk) through sync-governor: the only
// change from calling Sync directly is `baseUrl`.
//
//   npm install @sync.so/sdk
//   GOVERNOR_URL=https://governor.example.com SYNC_API_KEY=sk-... node examples/typescript-sdk.mjs
//
// SYNC_API_KEY is your Sync key (pass-through mode) or a governor client key
// (managed mode). Optional: VIDEO_URL, AUDIO_URL, MODEL, POLL_SECONDS (600).
//
// `Prefer: wait=30` asks the governor to hold the create for up to 30 s
// until the account has room (a free concurrency permit, budget in the
// minute) instead of answering 429 at once. A 429 that still comes back is a
// SyncError whose body carries `retryAfterMs`, `policy` and `limit`.
import { SyncClient, SyncError } from "@sync.so/sdk";

const baseUrl = process.env.GOVERNOR_URL?.replace(/\/$/, "");
const apiKey = process.env.SYNC_API_KEY;
if (!baseUrl || !apiKey) {
  console.error("set GOVERNOR_URL and SYNC_API_KEY");
  process.exit(2);
}
const pollSeconds = Number(process.env.POLL_SECONDS ?? 600);
const RUNNING = new Set(["PENDING", "PROCESSING"]);

const sync = new SyncClient({ baseUrl, apiKey });
// The governor already paces the account: let its Retry-After speak instead
// of the SDK's own retries.
const options = { maxRetries: 0, timeoutInSeconds: 60 };

let created;
try {
  created = await sync.generations.create(
    {
      model: process.env.MODEL ?? "lipsync-2",
      input: [
        { type: "video", url: process.env.VIDEO_URL ?? "https://assets.sync.so/docs/example-video.mp4" },
        { type: "audio", url: process.env.AUDIO_URL ?? "https://assets.sync.so/docs/example-audio.wav" },
      ],
      options: { sync_mode: "loop" },
    },
    { ...options, headers: { Prefer: "wait=30" } },
  );
} catch (err) {
  if (err instanceof SyncError && err.statusCode === 429) {
    console.error(`refused: retry in ${err.body?.retryAfterMs} ms (${err.body?.policy}, limit ${err.body?.limit})`);
    process.exit(1);
  }
  throw err;
}
console.log(`created ${created.id}: ${created.status}`);

// Poll until the generation ends (a webhook is the alternative: the governor
// relays Sync's callback to the webhookUrl you pass).
const deadline = Date.now() + pollSeconds * 1000;
let generation = created;
let last = created.status;
while (RUNNING.has(generation.status)) {
  if (Date.now() > deadline) {
    console.error(`still ${generation.status} after ${pollSeconds} s`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 1000));
  generation = await sync.generations.get(created.id, options);
  if (generation.status !== last) console.log(`${created.id}: ${(last = generation.status)}`);
}
console.log(`generation ${generation.id}: ${generation.status}${generation.outputUrl ? ` ${generation.outputUrl}` : ""}`);
process.exit(generation.status === "COMPLETED" ? 0 : 1);
