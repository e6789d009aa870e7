# tests/e2e/stream_peer.py — the kernel-side server of the TCP differential tests (tcp_zerocopy.py,
# tcp_splice.py): a listener on each of their ports, every connection served by the test's own
# handler in a thread of its own.
import socket, threading, time


def serve_forever(ports, conn):
    """Listens on 0.0.0.0:port for each of `ports`; conn(port, c) serves each accepted connection.
    Never returns."""
    def serve(port):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("0.0.0.0", port))
        ls.listen(16)
        while True:
            c, _ = ls.accept()
            threading.Thread(target=conn, args=(port, c), daemon=True).start()

    for p in ports:
        threading.Thread(target=serve, args=(p,), daemon=True).start()
    while True:
        time.sleep(1)
