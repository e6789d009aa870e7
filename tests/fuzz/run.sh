#!/usr/bin/env bash
# tests/fuzz/run.sh SRC BUILD_DIR [SECONDS] [TARGET] — builds a libFuzzer target with clang
# (ASan+UBSan) and runs it for a bounded time (default 60 s, or $XMIT_FUZZ_SECS) in a network
# namespace of its own (unshare -n, loopback up). TARGET is sendmsg_fuzz (default) or
# tcp_parse_fuzz. A finding fails the test and leaves the input under BUILD_DIR.
set -euo pipefail
src=$1 out=$2 secs=${3:-${XMIT_FUZZ_SECS:-60}} target=${4:-sendmsg_fuzz}
command -v clang++ >/dev/null || { echo "clang++ missing (scripts/setup installs clang)"; exit 1; }
case $target in
  sendmsg_fuzz)
    corpus=corpus
    srcs=("$src/tests/fuzz/sendmsg_fuzz.cc" "$src/tests/sock/diff_harness.cc"
          "$src"/stack/sock/{cmsg,ip_options,msghdr,udp_sendmsg_checks}.cc)
    done_msg="kernel and stack/sock agreed on every errno" ;;
  tcp_parse_fuzz)
    corpus=corpus_tcp_parse
    srcs=("$src/tests/fuzz/tcp_parse_fuzz.cc" "$src/stack/tcp/tcp_input_parse.cc" "$src/stack/base/checksum.cc")
    done_msg="no parser invariant broken, no sanitizer finding" ;;
  *) echo "unknown fuzz target $target"; exit 1 ;;
esac
mkdir -p "$out/$corpus"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src" \
  "${srcs[@]}" -o "$out/$target"
cd "$out"
# Without CAP_NET_RAW and CAP_NET_ADMIN (see sendmsg_fuzz.cc): dropped from the bounding set, so
# root's exec of the fuzzer does not get them.
unshare -n sh -c "ip link set lo up && exec setpriv --bounding-set -net_raw,-net_admin --inh-caps -net_raw,-net_admin \
  ./$target -max_total_time=$secs -print_final_stats=1 $corpus" \
  >"$out/$target.log" 2>&1 || { grep -v '^#' "$out/$target.log" | tail -30; exit 1; }
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$target.log")
units=$(ls "$corpus" | wc -l)
echo "$target: $runs inputs in ${secs}s, corpus $units, $done_msg"
