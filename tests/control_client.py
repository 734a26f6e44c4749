#!/usr/bin/env python3
"""tests/control_client.py: raw HTTP clients of snabb's control server for tests/control_test.sh,
the requests curl will not send.

  control_client.py send SOCKET TEXT     send TEXT (\\r\\n escapes allowed; @FILE: FILE's bytes) as
                                          it is; print the status line of the answer, or "closed"
                                          when there is none
  control_client.py cut SOCKET TEXT      send TEXT, then close without reading: a client gone
                                          mid-request
  control_client.py flood SOCKET N       N connections open at once, each sending one of five
                                          requests in turn (GET /counters, GET /metrics,
                                          GET /config, half a request then gone, malformed); print
                                          what each kind got, as "KIND STATUS COUNT" lines
"""
import resource
import selectors
import socket
import sys


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def status_of(data):
    if not data:
        return "closed"
    return data.split(b"\r\n", 1)[0].decode("latin-1")


def read_all(s):
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def payload(text):
    if text.startswith("@"):
        with open(text[1:], "rb") as f:
            return f.read()
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


def send(path, text):
    s = connect(path)
    try:
        s.sendall(payload(text))
        s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before reading it all
    print(status_of(read_all(s)))


def cut(path, text):
    s = connect(path)
    s.sendall(payload(text))
    s.close()


KINDS = [
    ("counters", b"GET /counters HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ("metrics", b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ("config", b"GET /config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ("gone", b"POST /config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nreturn"),
    ("malformed", b"GET /counters HTTP/1.1\r\nHost x\r\n\r\n"),
]


def flood(path, n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # All N connected before any request is sent: N connections open at once.
    socks = [connect(path) for _ in range(n)]
    sel = selectors.DefaultSelector()
    replies = {}
    for i, s in enumerate(socks):
        kind, request = KINDS[i % len(KINDS)]
        s.sendall(request)
        if kind == "gone":
            s.close()
            continue
        s.setblocking(False)
        replies[s] = (kind, [])
        sel.register(s, selectors.EVENT_READ)
    counts = {}
    while replies:
        events = sel.select(timeout=120)
        if not events:  # no answer in 2 minutes: a hang, counted as such
            for kind, _ in replies.values():
                counts[(kind, "no answer")] = counts.get((kind, "no answer"), 0) + 1
            break
        for key, _ in events:
            s = key.fileobj
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                b = b""
            kind, chunks = replies[s]
            if b:
                chunks.append(b)
                continue
            sel.unregister(s)
            s.close()
            del replies[s]
            status = status_of(b"".join(chunks))
            counts[(kind, status)] = counts.get((kind, status), 0) + 1
    gone = sum(1 for i in range(n) if KINDS[i % len(KINDS)][0] == "gone")
    counts[("gone", "closed")] = gone
    for (kind, status), count in sorted(counts.items()):
        print(kind, status, count)


def main():
    command, path = sys.argv[1], sys.argv[2]
    if command == "send":
        send(path, sys.argv[3])
    elif command == "cut":
        cut(path, sys.argv[3])
    elif command == "flood":
        flood(path, int(sys.argv[3]))
    else:
        sys.exit("usage: control_client.py send|cut|flood SOCKET ARG")


if __name__ == "__main__":
    main()
