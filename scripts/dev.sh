#!/usr/bin/env bash
# Runs the governor locally in workerd (wrangler dev).
#   scripts/dev.sh          in front of the local Sync simulator (no key needed)
#   scripts/dev.sh --real   in front of the real Sync (needs SYNC_API_KEY in the environment)
# Env: PORT (8787), SIM_PORT (8788), SYNC_PLAN (creator), extra wrangler args after the switch.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }

mode=sim
if [ "${1:-}" = "--real" ]; then mode=real; shift; fi
PORT="${PORT:-8787}"
SIM_PORT="${SIM_PORT:-8788}"
PLAN="${SYNC_PLAN:-creator}"

bash scripts/setup.sh   # wrangler dev then builds the Worker through wrangler.toml's [build] command

pids=()
cleanup() { for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

vars=(--var "SYNC_PLAN:$PLAN" --var "GOVERNOR_WEBHOOK_KEY:local-dev-webhook-key-not-secret")
if [ "$mode" = sim ]; then
  key=sk-sim-local
  ./target/release/sync-sim --port "$SIM_PORT" --key "$key" --concurrency "$(case $PLAN in hobbyist) echo 1;; growth) echo 6;; scale) echo 15;; *) echo 3;; esac)" \
    --pending-ms 1000 --processing-ms 8000 >/tmp/sync-sim.out 2>/tmp/sync-sim.log &
  pids+=($!)
  vars+=(--var "SYNC_API_BASE:http://127.0.0.1:$SIM_PORT")
  keyarg="x-api-key: $key"
  say "Sync simulator on http://127.0.0.1:$SIM_PORT (stats: /_sim/stats, log: /tmp/sync-sim.log)"
else
  : "${SYNC_API_KEY:?--real needs SYNC_API_KEY in the environment}"
  vars+=(--var "SYNC_API_BASE:https://api.sync.so")
  keyarg='x-api-key: $SYNC_API_KEY'
  say "fronting the real Sync at https://api.sync.so (your key stays in your shell)"
fi

# One config, as deployed: the admin API, the metrics and the dashboard's
# data answer with a local admin key (a var here; a secret when deployed).
ADMIN_KEY="${GOVERNOR_ADMIN_KEY:-local-dev-admin-key-not-secret}"
vars+=(--var "GOVERNOR_ADMIN_KEY:$ADMIN_KEY")

setsid npx wrangler dev -c wrangler.toml --ip 127.0.0.1 --port "$PORT" \
  --inspector-port 0 --persist-to .wrangler/dev-state "${vars[@]}" "$@" &
pids+=($!)

for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/governor/v1/health" >/dev/null 2>&1 && break
  sleep 1
done
cat >&2 <<TXT

  sync-governor is running on http://127.0.0.1:$PORT  (mode: $mode, plan: $PLAN)

  Create a generation through it:
    curl -s http://127.0.0.1:$PORT/v2/generate -H '$keyarg' -H 'content-type: application/json' \\
      -d '{"model":"lipsync-2","input":[{"type":"video","url":"https://example.com/v.mp4"},{"type":"audio","url":"https://example.com/a.wav"}]}'

  See the account's limits and in-flight generations:
    curl -s http://127.0.0.1:$PORT/governor/v1/status -H '$keyarg'

  The operator dashboard: http://127.0.0.1:$PORT/governor/v1/dashboard (admin key: $ADMIN_KEY)
  The metrics:  curl -s http://127.0.0.1:$PORT/governor/v1/metrics -H 'x-governor-admin-key: $ADMIN_KEY'

  Ctrl-C stops everything.
TXT
wait "${pids[-1]}"
