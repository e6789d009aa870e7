// verbs/ibv/rx_inject_mark.h — the skb mark that tells rx_inject.bpf.c's programs (and the software
// device's divert program and receive socket) a frame the backend puts onto the interface's receive
// path. C and C++ (the BPF programs include it). "xmit" in ASCII.
#pragma once

#define XMIT_RX_INJECT_MARK 0x786d6974u
