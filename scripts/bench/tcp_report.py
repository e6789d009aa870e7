# scripts/bench/tcp_report.py — the tables of scripts/bench/tcp_stream, tcp_rr and zerocopy from the results file
# tcp_lib.sh writes: medians over the rounds per (path, mode, size), each xmit column with its ratio to
# the kernel's, or "passthrough" (and why) where xmit did not carry the connection.
#   python3 tcp_report.py stream|rr|zerocopy RESULTS
# With XMIT_BENCH_RESULTS=FILE each cell is also appended to FILE as one JSON line (bench, case,
# metric, path, value, state) for scripts/bench/summary.
import json
import os
import statistics
import sys


def parse(path):
    runs = {}
    for line in open(path):
        f = line.split()
        p, mode, size = f[0], f[1], int(f[2])
        kv, i = {}, 3
        while f[i] != "outsegs":
            kv[f[i]] = float(f[i + 1])
            i += 2
        kv["outsegs"] = int(f[i + 1])
        kv["state"] = f[i + 2]
        kv["why"] = " ".join(f[i + 3:])
        runs.setdefault((p, mode, size), []).append(kv)
    return runs


def main():
    what, runs = sys.argv[1], parse(sys.argv[2])
    paths = [p for p in ("kernel", "afxdp", "afxdp-bp", "verbs-sw", "verbs-sw-off") if any(k[0] == p for k in runs)]
    order = {"send": 0, "send-zc": 1, "send-sf": 2, "recv": 3}
    keys = sorted({(m, s) for _, m, s in runs}, key=lambda k: (k[1], order.get(k[0], 4)) if what == "zerocopy"
                  else (k[0] != "send", k[1]))

    def med(p, m, s, f):
        return statistics.median(f(r) if callable(f) else r[f] for r in runs[(p, m, s)])

    def state(p, m, s):
        st = {r["state"] for r in runs[(p, m, s)]}
        return "passthrough" if "passthrough" in st else st.pop()

    if what == "stream":
        metrics = [("Gbit/s", lambda r: r["bytes"] * 8 / r["seconds"] / 1e9, "{:.3f}")]
        label = {"send": "client sends (xmit as sender)", "recv": "client receives (xmit as receiver)"}
    elif what == "zerocopy":
        metrics = [("Gbit/s", lambda r: r["bytes"] * 8 / r["seconds"] / 1e9, "{:.3f}"),
                   ("CPU s/GB", lambda r: r["cpu_s"] / (r["bytes"] / 1e9), "{:.3f}")]
        label = {"send": "write() (copy)", "send-zc": "send(MSG_ZEROCOPY)", "send-sf": "sendfile()"}
    else:
        metrics = [("trans/s", lambda r: r["trans"] / r["seconds"], "{:,.0f}"),
                   ("p50 us", "p50_us", "{:.1f}"), ("p99 us", "p99_us", "{:.1f}"),
                   ("CPU s/s", lambda r: r.get("cpu_s", 0) / r["seconds"], "{:.2f}")]
        label = {"rr": "request/response"}
    head = f"{'':44} {'':8}" + "".join(f" {p:>12}" + ("" if p == "kernel" else f" {'ratio':>13}") for p in paths)
    print(head)
    for m, s in keys:
        for name, f, fmt in metrics:
            row = f"{label[m] + f', {s} B':44} {name:8}"
            for p in paths:
                if (p, m, s) not in runs:
                    row += f" {'-':>12}" + ("" if p == "kernel" else f" {'':>13}")
                    continue
                v = med(p, m, s, f)
                row += f" {fmt.format(v):>12}"
                if os.environ.get("XMIT_BENCH_RESULTS"):
                    with open(os.environ["XMIT_BENCH_RESULTS"], "a") as out:
                        out.write(json.dumps({"bench": "tcp_" + what, "case": f"{label[m]}, {s} B", "metric": name,
                                              "path": p, "value": v, "state": state(p, m, s)}) + "\n")
                if p == "kernel":
                    continue
                st = state(p, m, s)
                if st != "offloaded":
                    row += f" {'passthrough':>13}"
                elif ("kernel", m, s) in runs:
                    k = med("kernel", m, s, f)
                    row += f" {'x' + format(v / k, '.3f') if k else '':>13}"
                else:
                    row += f" {'':>13}"
            print(row)
    print()
    print("segments the kernel server (b) retransmitted, median per run (what the client's side lost or")
    print("dropped of b's data; b sends only ACKs where the client sends):")
    for m, s in keys:
        cols = ", ".join(f"{p} {med(p, m, s, 'b_retrans'):.0f}" for p in paths if (p, m, s) in runs)
        print(f"  {label[m]}, {s} B: {cols}")
    print()
    print("ratio: xmit / kernel (latency and CPU s/GB too: below 1 is better there). passthrough: xmit did not carry the")
    print("connection (its numbers are the kernel's again); the evidence per path, first run of each:")
    if any(k[0] == "afxdp-bp" for k in runs):
        print("  (afxdp-bp: afxdp with XMIT_BUSY_POLL=50, its blocked receives spinning up to 50 us; CPU s/s: the")
        print("  client's user+system CPU seconds per second of the run)")
    seen = set()
    for (p, m, s), rs in sorted(runs.items()):
        if p == "kernel" or (p, rs[0]["why"].split(";")[0]) in seen:
            continue
        seen.add((p, rs[0]["why"].split(";")[0]))
        print(f"  {p} {m} {s} B: {rs[0]['state']}: {rs[0]['why']}")


main()
