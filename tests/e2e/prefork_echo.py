# tests/e2e/prefork_echo.py ADDR PORT WORKERS DELAY — a pre-fork echo server (the nginx pattern):
# the master listens, waits DELAY seconds (connections made meanwhile wait in the kernel's accept
# queue), forks a helper process that closes the listener and waits in select() on a pipe (as
# nginx's cache manager does), then WORKERS workers that accept with select() and echo each
# connection until EOF, one thread per connection; each accept prints "accept PID" on stdout.
# The master waits for them.
import os
import select
import socket
import sys
import threading
import time

addr, port, workers, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(128)
print("listening", flush=True)
time.sleep(delay)


def echo(c):
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.close()


def worker():
    ls.setblocking(False)
    while True:
        select.select([ls], [], [])  # the worker's first readiness call: xmit adopts the listener here
        try:
            c, _ = ls.accept()
        except BlockingIOError:
            continue  # another worker took it
        c.setblocking(True)
        print("accept", os.getpid(), flush=True)
        threading.Thread(target=echo, args=(c,), daemon=True).start()


rd, wr = os.pipe()
helper = os.fork()
if helper == 0:  # no listener: it must not take a worker's share of the queues
    ls.close()
    os.close(wr)
    select.select([rd], [], [])  # until the master goes
    os._exit(0)
os.close(rd)
pids = []
for _ in range(workers):
    pid = os.fork()
    if pid == 0:
        try:
            worker()
        finally:
            os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
