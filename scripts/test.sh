#!/usr/bin/env bash
# Runs every test: native unit and property tests of the core and the
# simulator, then end-to-end tests of the built Worker in real workerd
# (Miniflare) against the simulator on loopback. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[test]\033[0m %s\n' "$*" >&2; }

bash scripts/setup.sh

# Gates, cheapest first: formatting, then clippy with warnings denied (the
# workspace natively, every target; the Worker crate again for its production
# target, wasm32, where cfg'd code differs), then, after the build, the
# startup time (what the platform limits) and a sanity gate on the gzip size.
say "gate: cargo fmt --check"
cargo fmt --all --check
say "gate: no status or rate class spelled as a string outside its type (scripts/check-literals.sh)"
bash scripts/check-literals.sh
say "gate: layout (no new import cycle in core, src or sim; no new production file over 300 lines)"
node scripts/layout.mjs
say "gate: cargo clippy (warnings denied)"
cargo clippy --quiet --workspace --all-targets -- -D warnings
cargo clippy --quiet -p sync-governor --target wasm32-unknown-unknown -- -D warnings

say "native tests (core + simulator)"
cargo test --quiet -p governor-core -p sync-sim

say "building the Worker"
bash scripts/build.sh >/tmp/sync-governor-build.log 2>&1 || { cat /tmp/sync-governor-build.log; exit 1; }

say "gate: startup time (wrangler check startup, offline)"
bash scripts/startup.sh
say "gate: gzip size, sanity (wrangler deploy --dry-run)"
bash scripts/size.sh

say "end-to-end tests (workerd via Miniflare, simulator on 127.0.0.1)"
# Two files at a time: the suite holds no shared state (every file starts its
# own simulator and workerd on port 0 with its own persisted directory).
node --test --test-concurrency=2 --test-timeout=240000 tests/e2e/
