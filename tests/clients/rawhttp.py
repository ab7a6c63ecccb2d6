#!/usr/bin/env python3
"""Raw HTTP/1.1 client for hdrtap's integration tests (stdlib only).

Sends requests over ONE TCP connection and prints one JSON object per line on
stdout describing exactly what went over the wire, so the test can compare it
with what hdrtap captured:

  {"event":"hello","pid":..,"tid":..,"comm":".."}
  {"event":"connected","local":{"ip":..,"port":..},"remote":{"ip":..,"port":..}}
  {"event":"sent","seq":1,"method":"GET","target":"/?seq=1","version":"HTTP/1.1",
   "headers":[["Host",".."],..],"header_bytes":N}
  {"event":"response","seq":1,"version":"HTTP/1.1","status":200,"reason":"OK",
   "headers":[[..]],"header_bytes":N,"body_bytes":N}
  {"event":"waiting"}            (mode wait: after the first exchange)
  {"event":"done"}

Modes:
  normal     one sendall per request, read its response, next request (keep-alive)
  bytewise   every byte of every request in its own send() (TCP_NODELAY),
             response read after each request
  pipelined  all requests in ONE sendall, then all responses read in order
  wait       one request + response, print {"event":"waiting"}, block until a
             line arrives on stdin, then the remaining requests as in "normal"
  waitfirst  print {"event":"waiting"} before connecting, block until a line
             arrives on stdin, then connect and go on as in "normal"

Every request carries X-Test-Id: <--test-id> and X-Seq: <n> (n from 1).
Targets cycle through --paths, each with "?seq=<n>" appended.

Syscall variety (to exercise every hook):
  --send-api send      socket.sendall (send/sendto)          [default]
             sendmsg   socket.sendmsg with the request split over 3 iovecs
             sendmsg4  ... over 4 iovecs, one of them empty (the kernel's
                       unrolled path takes up to 4)
             sendmsg9  ... over 9 iovecs, one of them empty (bpf_loop's path)
             write     os.write on the socket fd
  --recv-api recv      socket.recv (recvfrom)                [default]
             recv_into socket.recv_into a bytearray
             read      os.read on the socket fd
             readv     os.readv into 2 buffers
Bodies: --body-size N adds "Content-Length: N" and an N-byte body made of
text that LOOKS like HTTP requests (with this test id) - a tracer that
parses bodies as messages reports phantom requests.
--big-header N adds "X-Big: <N bytes>" before the --header extras.
--tls speaks HTTPS: the socket is wrapped with Python's ssl module (OpenSSL,
no certificate check); "send"/"recv"/"recv_into" then go through SSL_write_ex
and SSL_read_ex, and the JSON still reports the plaintext exactly.
--in-thread does all socket work in a second thread named "rawhttp-worker"
(prctl PR_SET_NAME); "hello" then reports that thread's tid and comm.
Header values are sent as latin-1 bytes, so "--header 'X-A: caf\u00e9'" puts
the non-UTF-8 byte 0xE9 on the wire.
"""
import argparse
import json
import os
import socket
import ssl
import struct
import sys
import threading


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def endpoint(addr):
    return {"ip": addr[0], "port": addr[1]}


def split_iovecs(data, count):
    """data as count iovecs: 3 as equal thirds; more with the second one empty."""
    if count == 3:
        third = max(1, len(data) // 3)
        return [data[:third], data[third : 2 * third], data[2 * third :]]
    step = max(1, len(data) // (count - 1))
    parts = [data[i * step : (i + 1) * step] for i in range(count - 2)]
    parts.append(data[(count - 2) * step :])
    return parts[:1] + [b""] + parts[1:]


def build_request(args, seq):
    path = args.paths[(seq - 1) % len(args.paths)]
    sep = "&" if "?" in path else "?"
    target = f"{path}{sep}seq={seq}"
    host = f"[{args.host}]" if ":" in args.host else args.host
    headers = [
        ("Host", f"{host}:{args.port}"),
        ("User-Agent", "hdrtap-rawhttp/1.0"),
        ("Accept", "*/*"),
        ("X-Test-Id", args.test_id),
        ("X-Seq", str(seq)),
    ]
    if args.big_header:
        headers.append(("X-Big", ("0123456789abcdef" * (args.big_header // 16 + 1))[: args.big_header]))
    for h in args.header:
        name, _, value = h.partition(":")
        headers.append((name.strip(), value.strip()))
    body = b""
    if args.body_size:
        fake = f"GET /phantom HTTP/1.1\r\nX-Test-Id: {args.test_id}\r\nX-Seq: 9{seq}\r\n\r\n".encode()
        body = (fake * (args.body_size // len(fake) + 1))[: args.body_size]
        headers.append(("Content-Type", "text/plain"))
        headers.append(("Content-Length", str(len(body))))
    head = f"{args.method} {target} HTTP/1.1\r\n"
    head += "".join(f"{n}: {v}\r\n" for n, v in headers)
    head += "\r\n"
    head_bytes = head.encode("latin-1")
    data = head_bytes + body
    info = {
        "event": "sent",
        "seq": seq,
        "method": args.method,
        "target": target,
        "version": "HTTP/1.1",
        "headers": [[n, v] for n, v in headers],
        "header_bytes": len(head_bytes),
        "body_bytes": len(body),
    }
    return data, info


class Reader:
    """Buffered reader of HTTP/1.1 responses from a socket."""

    def __init__(self, sock, api):
        self.sock = sock
        self.api = api
        self.buf = b""

    def _fill(self):
        if self.api == "recv":
            chunk = self.sock.recv(65536)
        elif self.api == "recv_into":
            b = bytearray(65536)
            n = self.sock.recv_into(b)
            chunk = bytes(b[:n])
        elif self.api == "read":
            chunk = os.read(self.sock.fileno(), 65536)
        elif self.api == "readv":
            b1, b2 = bytearray(100), bytearray(65436)
            n = os.readv(self.sock.fileno(), [b1, b2])
            chunk = (bytes(b1) + bytes(b2))[:n]
        else:
            raise ValueError(self.api)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def read_until(self, marker):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                data, self.buf = self.buf[: i + len(marker)], self.buf[i + len(marker):]
                return data
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, method):
        head = self.read_until(b"\r\n\r\n")
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append([name, value.strip(" \t")])
        status = int(status)
        hmap = {n.lower(): v for n, v in headers}
        body = 0
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif hmap.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = self.read_until(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    self.read_until(b"\r\n")  # no trailers from nginx
                    break
                body += len(self.read_exact(size))
                self.read_exact(2)
        elif "content-length" in hmap:
            body = len(self.read_exact(int(hmap["content-length"])))
        else:
            raise ValueError("response without length on a keep-alive connection")
        return {
            "event": "response",
            "version": version,
            "status": status,
            "reason": reason,
            "headers": headers,
            "header_bytes": len(head),
            "body_bytes": body,
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["normal", "bytewise", "pipelined", "wait", "waitfirst"], default="normal")
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--test-id", required=True)
    ap.add_argument("--method", default="GET")
    ap.add_argument("--paths", default="/", help="comma-separated paths to cycle through")
    ap.add_argument("--header", action="append", default=[], help="extra 'Name: value' header")
    ap.add_argument("--timeout", type=float, default=15.0)
    ap.add_argument("--send-api", choices=["send", "sendmsg", "sendmsg4", "sendmsg9", "write"], default="send")
    ap.add_argument("--recv-api", choices=["recv", "recv_into", "read", "readv"], default="recv")
    ap.add_argument("--body-size", type=int, default=0)
    ap.add_argument("--big-header", type=int, default=0)
    ap.add_argument("--in-thread", action="store_true")
    ap.add_argument("--tls", action="store_true", help="HTTPS (Python ssl, no certificate check)")
    args = ap.parse_args()
    if args.tls and (args.send_api != "send" or args.recv_api not in ("recv", "recv_into")):
        ap.error("--tls works with --send-api send and --recv-api recv or recv_into only")
    args.paths = args.paths.split(",")
    if not args.in_thread:
        run(args)
        return
    failed = []

    def worker():
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(15, b"rawhttp-worker", 0, 0, 0) != 0:  # PR_SET_NAME
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
            run(args)
        except BaseException as e:  # report in the main thread
            failed.append(e)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    if failed:
        raise failed[0]


def run(args):
    tid = threading.get_native_id()
    with open(f"/proc/self/task/{tid}/comm") as f:
        comm = f.read().strip()
    out({"event": "hello", "pid": os.getpid(), "tid": tid, "comm": comm})

    if args.mode == "waitfirst":
        out({"event": "waiting"})
        if not sys.stdin.readline():
            raise SystemExit("stdin closed before the go line")
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if args.send_api == "send" and args.recv_api == "recv":
        sock.settimeout(args.timeout)
    else:
        # os.read/os.write need a blocking fd; SO_RCVTIMEO/SO_SNDTIMEO bound the wait.
        tv = struct.pack("ll", int(args.timeout), 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.connect((args.host, args.port))
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock)
    out({"event": "connected", "local": endpoint(sock.getsockname()), "remote": endpoint(sock.getpeername())})
    reader = Reader(sock, args.recv_api)

    def send_all(data):
        if args.send_api == "send":
            sock.sendall(data)
            return
        while data:
            if args.send_api.startswith("sendmsg"):
                n = sock.sendmsg(split_iovecs(data, {"sendmsg": 3, "sendmsg4": 4, "sendmsg9": 9}[args.send_api]))
            else:
                n = os.write(sock.fileno(), data)
            data = data[n:]

    def exchange(seq, bytewise=False):
        data, info = build_request(args, seq)
        if bytewise:
            for i in range(len(data)):
                sent = sock.send(data[i : i + 1])
                assert sent == 1, sent
        else:
            send_all(data)
        out(info)
        resp = reader.read_response(args.method)
        resp["seq"] = seq
        out(resp)

    seqs = list(range(1, args.count + 1))
    if args.mode in ("normal", "waitfirst"):
        for s in seqs:
            exchange(s)
    elif args.mode == "bytewise":
        for s in seqs:
            exchange(s, bytewise=True)
    elif args.mode == "pipelined":
        built = [build_request(args, s) for s in seqs]
        send_all(b"".join(d for d, _ in built))
        for _, info in built:
            out(info)
        for s in seqs:
            resp = reader.read_response(args.method)
            resp["seq"] = s
            out(resp)
    elif args.mode == "wait":
        exchange(seqs[0])
        out({"event": "waiting"})
        if not sys.stdin.readline():
            raise SystemExit("stdin closed before the go line")
        for s in seqs[1:]:
            exchange(s)
    sock.close()
    out({"event": "done"})


if __name__ == "__main__":
    main()
