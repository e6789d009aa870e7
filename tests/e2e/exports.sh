#!/usr/bin/env bash
# tests/e2e/exports.sh MAP — libxmit.so exports exactly the symbols its version script lists, and
# links no library (abseil, ...) whose copy could clash with the host program's own (libbpf and
# libibverbs are allowed: shared, symbol-versioned system libraries).
source "$(dirname "$0")/lib.sh"
map=$1
want=$(sed -n '/global:/,/local:/p' "$map" | grep -o '^ *[A-Za-z_0-9]*;' | tr -d ' ;' | sort)
have=$(nm -D --defined-only "$XMIT_LIB" | awk '{print $3}' | sed 's/@.*//' | sort)
[ -n "$want" ] || fail "no symbols in $map"
diff <(echo "$want") <(echo "$have") || fail "exported symbols differ from $map"
echo "exports: $(echo "$have" | wc -l) symbols, all interposed functions"
needed=$(readelf -d "$XMIT_LIB" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "needs: $needed"
for lib in $needed; do
  case "$lib" in
    # libibverbs: the verbs backend (rdma-core, versioned symbols; the host program may load it too).
    libc.so.*|libstdc++.so.*|libgcc_s.so.*|libm.so.*|ld-linux-*|libbpf.so.*|libelf.so.*|libz.so.*|libibverbs.so.*) ;;
    *) fail "libxmit.so needs $lib" ;;
  esac
done
pass exports
