#!/bin/sh
# SPEC §15 / issue 19: `global_shuffle` over range(10^8) against range(10^8) unshuffled.
# Usage: bench/order/global_shuffle.sh [PIPEC] (default: target/release/pipec; build it with
# `cargo build --release -p pipec-cli`). Prints the best wall time of 3 runs of each and
# the ratio of throughputs (shuffled / unshuffled; the issue asks for >= 0.5).
set -eu
PIPEC=${1:-target/release/pipec}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo 'pipeline main = range(100000000)' > "$dir/plain.pipe"
echo 'pipeline main = range(100000000).global_shuffle(seed: 7)' > "$dir/shuffled.pipe"
best() {
    b=""
    for _ in 1 2 3; do
        t=$( { /usr/bin/time -f %e "$PIPEC" --discard "$1" >/dev/null; } 2>&1 )
        if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
    done
    echo "$b"
}
plain=$(best "$dir/plain.pipe")
shuffled=$(best "$dir/shuffled.pipe")
echo "range(10^8):                 $plain s"
echo "range(10^8).global_shuffle:  $shuffled s"
echo "throughput ratio: $(echo "scale=3; $plain / $shuffled" | bc)"
