# tests/e2e/prefork_echo.py ADDR PORT WORKERS DELAY — a pre-fork echo server (the nginx pattern):
# the master listens, waits DELAY seconds (connections made meanwhile wait in the kernel's accept
# queue), forks a helper process that closes the listener and waits in select() on a pipe (as
# nginx's cache manager does), then WORKERS workers that accept with select() and echo each
# connection until EOF, one thread per connection; each accept prints "accept PID" on stdout.
# The master waits for them. A 5th argument "fork": each connection's rest is echoed by a child the
# worker forks after its first read.
import os
import select
import socket
import sys
import threading
import time

addr, port, workers, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
# "fork": a worker echoes a connection's first read itself, then forks a child that echoes the rest
# (the forking-server pattern inside a worker: the connection moves into its kernel socket).
fork_per_conn = len(sys.argv) > 5 and sys.argv[5] == "fork"
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(128)
print("listening", flush=True)
time.sleep(delay)


def echo(c):
    if fork_per_conn:
        b = c.recv(65536)
        if b:
            c.sendall(b)
        if os.fork() != 0:
            c.close()
            return
        try:
            echo_rest(c)
        finally:
            os._exit(0)
    echo_rest(c)


def echo_rest(c):
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
        os.write(1, b"accept %d\n" % os.getpid())  # one write: the workers share stdout
        if fork_per_conn:
            echo(c)  # forks: no thread (a fork copies only the calling thread)
        else:
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
