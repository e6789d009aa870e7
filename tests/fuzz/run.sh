#!/usr/bin/env bash
# tests/fuzz/run.sh SRC BUILD_DIR [SECONDS] — builds the libFuzzer targets with clang (ASan+UBSan)
# and runs each for a bounded time (default 60 s, or $XMIT_FUZZ_SECS) in a network namespace of its
# own (unshare -n, loopback up). A finding fails the test and leaves the input under BUILD_DIR.
set -euo pipefail
src=$1 out=$2 secs=${3:-${XMIT_FUZZ_SECS:-60}}
command -v clang++ >/dev/null || { echo "clang++ missing (scripts/setup installs clang)"; exit 1; }
mkdir -p "$out/corpus"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src" \
  "$src/tests/fuzz/sendmsg_fuzz.cc" "$src/tests/sock/diff_harness.cc" \
  "$src"/stack/sock/{cmsg,ip_options,msghdr,udp_sendmsg_checks}.cc -o "$out/sendmsg_fuzz"
cd "$out"
# Without CAP_NET_RAW and CAP_NET_ADMIN (see sendmsg_fuzz.cc): dropped from the bounding set, so
# root's exec of the fuzzer does not get them.
unshare -n sh -c "ip link set lo up && exec setpriv --bounding-set -net_raw,-net_admin --inh-caps -net_raw,-net_admin \
  ./sendmsg_fuzz -max_total_time=$secs -print_final_stats=1 corpus" \
  >"$out/sendmsg_fuzz.log" 2>&1 || { grep -v '^#' "$out/sendmsg_fuzz.log" | tail -30; exit 1; }
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/sendmsg_fuzz.log")
units=$(ls corpus | wc -l)
echo "sendmsg_fuzz: $runs inputs in ${secs}s, corpus $units, kernel and stack/sock agreed on every errno"
