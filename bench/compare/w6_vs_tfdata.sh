#!/bin/sh
# W6 against tf.data at one thread count, in rounds that alternate the two, so that both
# meet the same host load (on a shared host a tool's time swings by up to 2x between
# minutes; only times taken side by side compare). Each round: tf.data's median of three
# epochs in one process (`w6.py tf`), then the median of three `pipec --discard` runs.
# Prints each round's times and ratio, then the median ratio over the rounds.
#
# usage (from the repository root, after `python3 bench/compare/w6.py gen
# bench/workloads/data/w6` and `cargo build --release -p pipec-cli`):
#   sh bench/quiet.sh sh bench/compare/w6_vs_tfdata.sh THREADS [ROUNDS] [PIPEC]
# PY names the Python with tensorflow (default python3).
set -e
threads=${1:?usage: w6_vs_tfdata.sh THREADS [ROUNDS] [PIPEC]}
rounds=${2:-5}
pipec=$(realpath "${3:-target/release/pipec}")
py=${PY:-python3}
cd bench/workloads
ratios=""
i=0
while [ "$i" -lt "$rounds" ]; do
    tf=$("$py" ../compare/w6.py tf data/w6 "$threads" 2>/dev/null | sed -n 's/^seconds=//p' | tail -1)
    runs=""
    for _ in 1 2 3; do
        s=$(date +%s.%N)
        "$pipec" --discard --threads "$threads" w6.pipe >/dev/null
        e=$(date +%s.%N)
        runs="$runs $(echo "$e - $s" | bc)"
    done
    p=$(echo "$runs" | tr ' ' '\n' | sed '/^$/d' | sort -n | sed -n 2p)
    r=$(echo "scale=3; $tf / $p" | bc)
    echo "round $((i + 1)): tf.data ${tf} s, pipec ${p} s (median of${runs}), ratio ${r}"
    ratios="$ratios $r"
    i=$((i + 1))
done
echo "$ratios" | tr ' ' '\n' | sed '/^$/d' | sort -n |
    awk -v t="$threads" '{a[NR] = $1} END {print "--threads " t ": median ratio " a[int((NR + 1) / 2)] " over " NR " rounds (min " a[1] ", max " a[NR] ")"}'
