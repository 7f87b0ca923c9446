#!/usr/bin/env bash
# Gate: statuses and rate classes are types, not strings. Their spelling
# lives in the wire (de)serialisers only — core/src/lifecycle/status.rs
# (GenerationStatus, TicketStatus) and core/src/rates/class.rs (RateClass) — so no
# other production file of the core or the Worker may hold one as a string
# literal. Comments, an inline `#[cfg(test)] mod … { … }` at a file's end
# and a module's own `tests.rs` (wire bodies as test data) are not production
# code and are skipped.
# Run alone: bash scripts/check-literals.sh (exit 1 and the offending lines).
set -euo pipefail
cd "$(dirname "$0")/.."
# A module's own tests.rs, declared `#[cfg(test)] mod tests;` by its parent
# (a/b.rs or a/b/mod.rs for a/b/tests.rs): test code. Any other is production.
is_test_module() {
  case "$1" in */tests.rs) ;; *) return 1 ;; esac
  local dir=${1%/tests.rs} p
  for p in "$dir.rs" "$dir/mod.rs" "$dir/lib.rs"; do
    [ -f "$p" ] && tr '\n' ' ' <"$p" | grep -Eq '#\[cfg\(test\)\][[:space:]]*mod[[:space:]]+tests[[:space:]]*;' && return 0
  done
  return 1
}
literals='"(PENDING|PROCESSING|COMPLETED|FAILED|REJECTED|CANCELED|CANCELLED|TIMED_OUT|QUEUED|SUBMITTING|SUBMITTED|generate|other)"'
found=$(
  git ls-files -co --exclude-standard 'core/src/*.rs' 'src/*.rs' \
    | grep -v -x -e core/src/lifecycle/status.rs -e core/src/rates/class.rs \
    | while read -r f; do is_test_module "$f" || echo "$f"; done \
    | while read -r f; do
        awk -v f="$f" '
          prev ~ /^#\[cfg\(test\)\]/ && $0 ~ /^(pub(\(crate\))? )?mod [A-Za-z_0-9]+ *\{/ { exit }
          { prev = $0 }
          /^[[:space:]]*\/\// { next }
          { print f ":" FNR ": " $0 }' "$f"
      done | grep -E "$literals" || true
)
if [ -n "$found" ]; then
  echo "status or rate class spelled as a string outside core/src/lifecycle/status.rs and core/src/rates/class.rs:" >&2
  echo "$found" >&2
  exit 1
fi
