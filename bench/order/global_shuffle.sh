#!/bin/sh
# SPEC §15 / issue 19: `global_shuffle` over range(10^8) against range(10^8) unshuffled.
# Usage: bench/order/global_shuffle.sh [PIPEC] [REPS] [PIPEC ARGS...] (default:
# target/release/pipec, 7 repetitions; build it with `cargo build --release -p pipec-cli`).
# Runs `pipec --discard` on each program REPS times, alternated so that a busy spell of the
# shared machine hits both, and prints the best and the median wall time of each and the
# ratio of throughputs (shuffled / unshuffled, from the best times; the issue asks for
# >= 0.5). Extra arguments go to pipec (e.g. `--threads 1`).
set -eu
PIPEC=${1:-target/release/pipec}
REPS=${2:-7}
[ $# -ge 2 ] && shift 2 || shift $#
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo 'pipeline main = range(100000000)' > "$dir/plain.pipe"
echo 'pipeline main = range(100000000).global_shuffle(seed: 7)' > "$dir/shuffled.pipe"
# Wall time of one run in seconds, to the microsecond.
run() {
    t0=$(date +%s%N)
    "$PIPEC" --discard "$@" >/dev/null
    t1=$(date +%s%N)
    echo "scale=6; ($t1 - $t0) / 1000000000" | bc
}
: > "$dir/plain.t"
: > "$dir/shuffled.t"
i=0
while [ "$i" -lt "$REPS" ]; do
    run "$dir/plain.pipe" "$@" >> "$dir/plain.t"
    run "$dir/shuffled.pipe" "$@" >> "$dir/shuffled.t"
    i=$((i + 1))
done
best() { sort -n "$1" | head -1; }
median() { sort -n "$1" | sed -n "$(( (REPS + 1) / 2 ))p"; }
pb=$(best "$dir/plain.t"); pm=$(median "$dir/plain.t")
sb=$(best "$dir/shuffled.t"); sm=$(median "$dir/shuffled.t")
echo "range(10^8):                 best $pb s, median $pm s"
echo "range(10^8).global_shuffle:  best $sb s, median $sm s"
echo "throughput ratio (best):   $(echo "scale=3; $pb / $sb" | bc)"
echo "throughput ratio (median): $(echo "scale=3; $pm / $sm" | bc)"
