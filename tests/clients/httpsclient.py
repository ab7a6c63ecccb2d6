#!/usr/bin/env python3
"""HTTPS keep-alive client built on http.client (stdlib only), for hdrtap's
integration tests.

One http.client.HTTPSConnection (Python's ssl, i.e. OpenSSL; no certificate
check) sends --count GET requests, keep-alive. The bytes http.client really
writes and reads are recorded below the TLS layer's plaintext side (a thin
wrapper around the SSL socket), so the JSON lines say exactly what went into
SSL_write and came out of SSL_read, in the same format as rawhttp.py:

  {"event":"hello","pid":..,"tid":..,"comm":".."}
  {"event":"connected","local":{..},"remote":{..}}
  {"event":"sent","seq":1,"method":"GET","target":"/?seq=1","version":"HTTP/1.1",
   "headers":[["Host",".."],..],"header_bytes":N}
  {"event":"response","seq":1,"version":"HTTP/1.1","status":200,"reason":"OK",
   "headers":[[..]],"header_bytes":N,"body_bytes":N}
  {"event":"done"}

Every request carries X-Test-Id and X-Seq; targets cycle through --paths with
"?seq=<n>" appended.
"""
import argparse
import http.client
import io
import json
import os
import ssl
import sys
import threading


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class TeeRaw(io.RawIOBase):
    """Raw reader over the SSL socket that keeps a copy of what it read."""

    def __init__(self, sock, log):
        self.sock = sock
        self.log = log

    def readable(self):
        return True

    def readinto(self, b):
        n = self.sock.recv_into(b)
        self.log += bytes(b[:n])
        return n


class TeeSock:
    """The SSL socket as http.client sees it, recording the plaintext."""

    def __init__(self, sock):
        self.sock = sock
        self.sent = bytearray()
        self.got = bytearray()

    def sendall(self, data):
        self.sent += data
        self.sock.sendall(data)

    def makefile(self, mode):
        assert "r" in mode, mode
        return io.BufferedReader(TeeRaw(self.sock, self.got))

    def __getattr__(self, name):
        return getattr(self.sock, name)


def split_head(head):
    lines = head[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append([name, value.strip(" \t")])
    return lines[0], headers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--test-id", required=True)
    ap.add_argument("--paths", default="/")
    ap.add_argument("--header", action="append", default=[], help="extra 'Name: value' header")
    args = ap.parse_args()
    paths = args.paths.split(",")

    tid = threading.get_native_id()
    with open(f"/proc/self/task/{tid}/comm") as f:
        comm = f.read().strip()
    out({"event": "hello", "pid": os.getpid(), "tid": tid, "comm": comm})

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(args.host, args.port, context=ctx, timeout=15)
    conn.connect()
    tee = TeeSock(conn.sock)
    conn.sock = tee
    out({
        "event": "connected",
        "local": {"ip": tee.getsockname()[0], "port": tee.getsockname()[1]},
        "remote": {"ip": tee.getpeername()[0], "port": tee.getpeername()[1]},
    })
    for seq in range(1, args.count + 1):
        path = paths[(seq - 1) % len(paths)]
        target = f"{path}{'&' if '?' in path else '?'}seq={seq}"
        conn.putrequest("GET", target)
        conn.putheader("X-Test-Id", args.test_id)
        conn.putheader("X-Seq", str(seq))
        for h in args.header:
            name, _, value = h.partition(":")
            conn.putheader(name.strip(), value.strip())
        tee.sent.clear()
        conn.endheaders()
        sent = bytes(tee.sent)
        head = sent[: sent.index(b"\r\n\r\n") + 4]
        start, headers = split_head(head)
        method, tgt, version = start.split(" ", 2)
        out({
            "event": "sent", "seq": seq, "method": method, "target": tgt, "version": version,
            "headers": headers, "header_bytes": len(head), "body_bytes": 0,
        })
        tee.got.clear()
        resp = conn.getresponse()
        body = resp.read()
        got = bytes(tee.got)
        rhead = got[: got.index(b"\r\n\r\n") + 4]
        status_line, rheaders = split_head(rhead)
        version, status, reason = (status_line.split(" ", 2) + [""])[:3]
        out({
            "event": "response", "seq": seq, "version": version, "status": int(status), "reason": reason,
            "headers": rheaders, "header_bytes": len(rhead), "body_bytes": len(body),
        })
    conn.close()
    out({"event": "done"})


if __name__ == "__main__":
    main()
