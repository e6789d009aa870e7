#!/usr/bin/env python3
"""tests/e2e/tcp_info.py — getsockopt(TCP_INFO) after one transfer, the differential's two ends.

  tcp_info.py server          in namespace b (kernel): per connection, read 1 MB, answer 100 KB,
                              then wait for the client's close (no FIN before it reads TCP_INFO)
  tcp_info.py client ADDR     in namespace a (kernel, or under libxmit.so): connect to ADDR:7500,
                              send 1 MB, read 100 KB, wait 0.5 s (a quiet point: all acked), print
                              TCP_INFO's length and fields as JSON
  tcp_info.py compare K X     the kernel's and xmit's JSON: fields that must be equal, and the
                              plausibility of the others; exit 1 on a difference
"""
import json
import math
import socket
import struct
import sys
import time

import stream_peer

PORT = 7500
UP, DOWN = 1 << 20, 100 * 1024

# Linux 6.18's struct tcp_info (include/uapi/linux/tcp.h), after the 8 bytes of u8 fields.
FIELDS = ("rto ato snd_mss rcv_mss unacked sacked lost retrans fackets last_data_sent last_ack_sent "
          "last_data_recv last_ack_recv pmtu rcv_ssthresh rtt rttvar snd_ssthresh snd_cwnd advmss "
          "reordering rcv_rtt rcv_space total_retrans").split()
FIELDS2 = [("pacing_rate", "Q"), ("max_pacing_rate", "Q"), ("bytes_acked", "Q"), ("bytes_received", "Q"),
           ("segs_out", "I"), ("segs_in", "I"), ("notsent_bytes", "I"), ("min_rtt", "I"),
           ("data_segs_in", "I"), ("data_segs_out", "I"), ("delivery_rate", "Q"), ("busy_time", "Q"),
           ("rwnd_limited", "Q"), ("sndbuf_limited", "Q"), ("delivered", "I"), ("delivered_ce", "I"),
           ("bytes_sent", "Q"), ("bytes_retrans", "Q"), ("dsack_dups", "I"), ("reord_seen", "I"),
           ("rcv_ooopack", "I"), ("snd_wnd", "I"), ("rcv_wnd", "I"), ("rehash", "I"),
           ("total_rto", "H"), ("total_rto_recoveries", "H"), ("total_rto_time", "I"),
           ("received_ce", "I"), ("delivered_e1_bytes", "I"), ("delivered_e0_bytes", "I"),
           ("delivered_ce_bytes", "I"), ("received_e1_bytes", "I"), ("received_e0_bytes", "I"),
           ("received_ce_bytes", "I"), ("accecn_fail_mode", "H"), ("accecn_opt_seen", "H")]


def parse(b):
    b = b + bytes(280 - len(b)) if len(b) < 280 else b
    st, ca, rtx, probes, backoff, opts, wsc, flags = struct.unpack_from("8B", b, 0)
    d = dict(state=st, ca_state=ca, retransmits=rtx, probes=probes, backoff=backoff, options=opts,
             snd_wscale=wsc & 15, rcv_wscale=wsc >> 4, app_limited=flags & 1)
    d.update(zip(FIELDS, struct.unpack_from("24I", b, 8)))
    d.update(zip([n for n, _ in FIELDS2], struct.unpack_from("=" + "".join(t for _, t in FIELDS2), b, 104)))
    return d


def serve(port, s):
    """One connection: 1 MB in, 100 KB out, then open until the client closes."""
    got = 0
    while got < UP:
        r = s.recv(65536)
        if not r:
            break
        got += len(r)
    if got == UP:
        s.sendall(b"d" * DOWN)
        while s.recv(65536):  # until the client closes
            pass
    s.close()


def client(addr):
    s = socket.create_connection((addr, PORT))
    s.sendall(b"u" * UP)
    got = 0
    while got < DOWN:
        r = s.recv(65536)
        if not r:
            sys.exit("EOF after %d bytes" % got)
        got += len(r)
    time.sleep(0.5)
    b = s.getsockopt(socket.SOL_TCP, socket.TCP_INFO, 512)
    d = parse(b)
    d["len"] = len(b)
    print(json.dumps(d, sort_keys=True))
    s.close()


# Equal on both runs: the same connection state, options and byte counts (the same transfer),
# nothing in flight at the quiet point.
EXACT = ["len", "state", "ca_state", "retransmits", "probes", "backoff", "options", "snd_wscale", "rcv_wscale",
         "snd_mss", "rcv_mss", "advmss", "pmtu", "unacked", "sacked", "lost", "retrans", "bytes_acked",
         "bytes_received", "notsent_bytes", "max_pacing_rate", "rehash", "total_rto", "total_rto_recoveries",
         "total_rto_time", "delivered_ce", "received_ce", "accecn_fail_mode", "accecn_opt_seen"]
# What the path does (losses, duplicates, reordering): equal when neither run met any (the veth
# pair is clean), else checked for consistency only. The kernel's own runs were seen to meet some:
# reord_seen 1 with reordering 90 (1 run in 11), dsack_dups 45 (1 run in 4 on the verbs-sw bed).
PATH = ["total_retrans", "bytes_retrans", "dsack_dups", "reord_seen", "rcv_ooopack"]
CLEAN = dict(total_retrans=0, bytes_retrans=0, dsack_dups=0, reord_seen=0, rcv_ooopack=0)
# Not kept by xmit yet (stack/tcp/tcp_info.h): the kernel's values vary, xmit's are 0.
NOT_YET = ["delivery_rate", "app_limited", "sndbuf_limited", "rcv_rtt", "rcv_space"]


def compare(kpath, xpath):
    k, x = (json.load(open(p)) for p in (kpath, xpath))
    bad = []
    for f in EXACT:
        line = "%-22s kernel %-12s xmit %s" % (f, k[f], x[f])
        print(line)
        if k[f] != x[f]:
            bad.append(line)
    clean = all(d[f] == CLEAN[f] for d in (k, x) for f in PATH)
    for f in PATH + ["reordering"]:
        line = "%-22s kernel %-12s xmit %s%s" % (f, k[f], x[f], "" if clean else " (a run met losses or reordering)")
        print(line)
        if clean and k[f] != x[f]:
            bad.append(line)
    for f in ["busy_time", "rwnd_limited", "rtt", "min_rtt", "data_segs_out", "data_segs_in", "segs_in"]:
        print("%-22s kernel %-12s xmit %s (plausible)" % (f, k[f], x[f]))
    for f in NOT_YET:
        print("%-22s kernel %-12s xmit %s (not yet)" % (f, k[f], x[f]))
    for name, d in (("kernel", k), ("xmit", x)):
        mss = d["snd_mss"]
        checks = {
            "bytes_acked = 1 MB + the SYN": d["bytes_acked"] == UP + 1,
            "bytes_sent = 1 MB + bytes_retrans": d["bytes_sent"] == UP + d["bytes_retrans"],
            "bytes_retrans <= total_retrans * mss": d["bytes_retrans"] <= d["total_retrans"] * mss,
            "data_segs_out >= 1 MB / mss": d["data_segs_out"] >= math.ceil(UP / mss),
            "data_segs_out <= 1 MB / mss + 64": d["data_segs_out"] <= math.ceil(UP / mss) + 64 + d["total_retrans"],
            "segs_out >= data_segs_out + 2": d["segs_out"] >= d["data_segs_out"] + 2,
            "data_segs_in >= 100 KB / rcv_mss": d["data_segs_in"] >= math.ceil(DOWN / d["rcv_mss"]),
            "segs_in >= data_segs_in + 1": d["segs_in"] >= d["data_segs_in"] + 1,
            "delivered >= 1 + 1 MB / mss": d["delivered"] >= 1 + math.ceil(UP / mss),
            "delivered <= 1 + data_segs_out": d["delivered"] <= 1 + d["data_segs_out"],
            "0 < min_rtt <= rtt + rttvar": 0 < d["min_rtt"] <= d["rtt"] + d["rttvar"],
            "rtt < 100 ms": 0 < d["rtt"] < 100000,
            "rto >= 200 ms": d["rto"] >= 200000,
            "busy_time < 5 s, whole jiffies": d["busy_time"] < 5000000 and d["busy_time"] % 1000 == 0,
            "rwnd_limited <= busy_time": d["rwnd_limited"] <= d["busy_time"],
            "reordering 3 (sysctl) unless reord_seen": d["reordering"] == 3 or d["reord_seen"] > 0,
            "snd_cwnd >= 10": d["snd_cwnd"] >= 10,
            "pacing_rate set": 0 < d["pacing_rate"] < (1 << 64) - 1,
            "snd_wnd > 0": d["snd_wnd"] > 0,
            "rcv_wnd > 0": d["rcv_wnd"] > 0,
            "quiet 0.5 s: last_data_sent >= 400": d["last_data_sent"] >= 400,
            "quiet 0.5 s: last_data_recv >= 400": d["last_data_recv"] >= 400,
            "quiet 0.5 s: last_ack_recv >= 400": d["last_ack_recv"] >= 400,
            "last_* < 5 s": max(d["last_data_sent"], d["last_data_recv"], d["last_ack_recv"]) < 5000,
        }
        for what, ok in checks.items():
            if not ok:
                bad.append("%s: not %s (%s)" % (name, what, {f: d[f] for f in d if f in what}))
    for b in bad:
        print("DIFF " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "server":
        stream_peer.serve_forever([PORT], serve)
    elif sys.argv[1] == "client":
        client(sys.argv[2])
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
