#!/usr/bin/env bash
# Runs fuzz targets for a bounded time each, without touching the committed seed corpus:
# new inputs go to a scratch directory; crash inputs land in fuzz/artifacts/TARGET/.
#   fuzz/run.sh SECONDS [TARGET...]      (default: every target)
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(compile interp run npy npz csv lines png jpeg resume state tfrecord example parquet)
fi
scratch="${FUZZ_SCRATCH:-$(mktemp -d)}"
cargo fuzz build --sanitizer none
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t"
    echo "== fuzz target $t for ${secs}s (scratch corpus $scratch/$t)"
    # -timeout: one input taking longer than this is reported as a hang (a crash).
    dict=()
    if [ "$t" = compile ] || [ "$t" = run ]; then
        dict=(-dict=pipe.dict)
    fi
    cargo fuzz run --sanitizer none "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}"
done
