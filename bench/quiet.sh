#!/bin/sh
# Pauses other builds and runs on the machine (cargo, rustc, linkers, python, pipec, test
# binaries under a target/ dir) with SIGSTOP while CMD runs, then resumes them with SIGCONT:
# on a shared 2-core machine, `nice` and autogroups alone did not keep other engineers'
# builds off the cores during a measurement. Usage: sh bench/quiet.sh CMD...
names='rustc cargo cc cc1 cc1plus ld collect2 python3 python valgrind pipec pipec-bench rust-lld ar cargo-fuzz'
all=""
for sweep in 1 2 3; do
  pids=$(for n in $names; do pgrep -x "$n"; done | grep -v "^$$\$")
  # test binaries have hashed names: any process whose executable lives under a target/ dir
  # (a fuzzer under target/<triple>/release/ too)
  more=$(ls -l /proc/[0-9]*/exe 2>/dev/null | grep -E '/target/([a-z0-9_-]+/)?(debug|release)/' | sed -E 's#.*/proc/([0-9]+)/exe.*#\1#')
  for p in $pids $more; do kill -STOP $p 2>/dev/null; all="$all $p"; done
  sleep 0.3
done
"$@"
for p in $all; do kill -CONT $p 2>/dev/null; done
