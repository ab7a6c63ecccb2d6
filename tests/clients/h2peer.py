#!/usr/bin/env python3
"""HTTP/2 peers for hdrtap's tests that report exactly what went on the wire.

    h2peer.py client --port P --scenario NAME [--id ID] [--hold FILE] [--n N]
    h2peer.py server --port P --ready FILE

The client speaks HTTP/2 with prior knowledge over a plain socket, frame by
frame (hyperframe for frames, hpack for header blocks), so a test can ask
for what libraries do not do on their own: CONTINUATION, padding,
never-indexed fields, table size updates, Huffman off, reset storms. It
prints one JSON line per stream:

    {"stream": 1, "sent": [[name, value], ...], "sent_block": <bytes>,
     "status": 200, "recv": [[name, value], ...], "reset": null}

The server answers HTTP/1.1 requests that ask to upgrade to h2c (RFC 7540
§3.2) and prior-knowledge HTTP/2 alike, with a fixed response per stream.
"""
import argparse
import json
import os
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
from hpack import Decoder, Encoder, NeverIndexedHeaderTuple
from hyperframe.frame import (ContinuationFrame, Frame, HeadersFrame, RstStreamFrame,
                              SettingsFrame, WindowUpdateFrame, DataFrame, PingFrame,
                              GoAwayFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def text(b):
    return b.decode() if isinstance(b, bytes) else b


class Client:
    """A frame-level HTTP/2 client (prior knowledge)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.enc = Encoder()
        self.dec = Decoder()
        self.buf = b""
        self.streams = {}
        self.next_id = 1
        # Seconds to wait after each read inside a frame (a client that
        # works on what it reads).
        self.slow = 0
        self.sock.sendall(PREFACE + SettingsFrame(0).serialize())

    def request(self, headers, huffman=True, pad=0, split=0, end_stream=True):
        """Send one request's HEADERS (split into CONTINUATIONs of `split`
        bytes when set, padded by `pad`); returns its stream id."""
        sid = self.next_id
        self.next_id += 2
        block = self.enc.encode(headers, huffman=huffman)
        frags = [block]
        if split:
            frags = [block[i:i + split] for i in range(0, len(block), split)]
        first = HeadersFrame(sid, frags[0])
        if end_stream:
            first.flags.add("END_STREAM")
        if pad:
            first.flags.add("PADDED")
            first.pad_length = pad
        out = []
        if len(frags) == 1:
            first.flags.add("END_HEADERS")
            out.append(first)
        else:
            out.append(first)
            for i, f in enumerate(frags[1:]):
                c = ContinuationFrame(sid, f)
                if i == len(frags) - 2:
                    c.flags.add("END_HEADERS")
                out.append(c)
        self.sock.sendall(b"".join(f.serialize() for f in out))
        self.streams[sid] = {
            "stream": sid,
            "sent": [[text(n), text(v)] for n, v in headers],
            "sent_block": len(block),
            "status": None,
            "recv": [],
            "reset": None,
            "data": 0,
            "done": False,
        }
        return sid

    def reset(self, sid, code=8):
        self.sock.sendall(RstStreamFrame(sid, error_code=code).serialize())
        self.streams[sid]["reset_sent"] = code
        self.streams[sid]["done"] = True

    def frames(self):
        while True:
            while len(self.buf) < 9:
                data = self.sock.recv(65536)
                if not data:
                    return
                self.buf += data
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            while len(self.buf) < 9 + length:
                data = self.sock.recv(65536)
                if not data:
                    return
                self.buf += data
                if self.slow:
                    time.sleep(self.slow)
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            yield f

    def run(self, timeout=10):
        """Read until every stream is done (END_STREAM or reset)."""
        deadline = time.time() + timeout
        self.sock.settimeout(timeout)
        block = {}
        for f in self.frames():
            if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                self.sock.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
            elif isinstance(f, PingFrame) and "ACK" not in f.flags:
                self.sock.sendall(PingFrame(0, f.opaque_data, flags=["ACK"]).serialize())
            elif isinstance(f, (HeadersFrame, ContinuationFrame)):
                block.setdefault(f.stream_id, b"")
                block[f.stream_id] += f.data
                if "END_HEADERS" in f.flags:
                    fields = self.dec.decode(block.pop(f.stream_id), raw=True)
                    s = self.streams.get(f.stream_id)
                    if s is not None:
                        for n, v in fields:
                            if n == b":status" and s["status"] is None:
                                s["status"] = int(v)
                            s["recv"].append([text(n), text(v)])
                if "END_STREAM" in f.flags and f.stream_id in self.streams:
                    self.streams[f.stream_id]["done"] = True
            elif isinstance(f, DataFrame):
                if f.stream_id in self.streams:
                    s = self.streams[f.stream_id]
                    s["data"] = s.get("data", 0) + len(f.data)
                if f.flow_controlled_length:
                    self.sock.sendall(WindowUpdateFrame(0, window_increment=f.flow_controlled_length).serialize()
                                      + WindowUpdateFrame(f.stream_id, window_increment=f.flow_controlled_length).serialize())
                if "END_STREAM" in f.flags and f.stream_id in self.streams:
                    self.streams[f.stream_id]["done"] = True
            elif isinstance(f, RstStreamFrame) and f.stream_id in self.streams:
                self.streams[f.stream_id]["reset"] = f.error_code
                self.streams[f.stream_id]["done"] = True
            elif isinstance(f, GoAwayFrame):
                break
            if all(s["done"] for s in self.streams.values()) or time.time() > deadline:
                break

    def report(self):
        for sid in sorted(self.streams):
            s = dict(self.streams[sid])
            s.pop("done", None)
            print(json.dumps(s), flush=True)
        self.streams = {}

    def close(self):
        self.sock.sendall(GoAwayFrame(0).serialize())
        self.sock.close()


def base(path, port, extra=()):
    return [(":method", "GET"), (":scheme", "http"), (":path", path),
            (":authority", f"127.0.0.1:{port}")] + list(extra)


def client(args):
    c = Client(args.port)
    tid = ("x-test-id", args.id)
    sc = args.scenario
    if sc == "continuation":
        # 24 KiB of headers in CONTINUATIONs of 4 KiB.
        extra = [tid] + [(f"x-filler-{i:02d}", f"{i:02d}" * 512) for i in range(24)]
        c.request(base("/cont", args.port, extra), split=4096)
    elif sc == "padding":
        c.request(base("/padded", args.port, [tid, ("x-pad", "p")]), pad=17)
    elif sc == "huffman-off":
        c.request(base("/plain-hpack", args.port, [tid, ("x-text", "Hello, World")]), huffman=False)
        c.request(base("/huffman", args.port, [tid, ("x-text", "Hello, World")]), huffman=True)
    elif sc == "table-size":
        c.request(base("/t1", args.port, [tid, ("x-cached", "aaaa"), ("x-more", "m")]))
        c.run()
        # Shrink the table (a size update in the next block), then grow it.
        c.enc.header_table_size = 64
        c.request(base("/t2", args.port, [tid, ("x-cached", "aaaa")]))
        c.run()
        c.enc.header_table_size = 4096
        c.request(base("/t3", args.port, [tid, ("x-cached", "aaaa"), ("x-new", "n")]))
    elif sc == "never-indexed":
        c.request(base("/secret", args.port,
                       [tid, NeverIndexedHeaderTuple("x-secret-token", "hunter2-secret"),
                        ("x-public", "visible")]))
    elif sc == "reset-storm":
        for i in range(args.n):
            sid = c.request(base(f"/storm/{i}", args.port, [tid]))
            c.reset(sid)
        # A last normal request, so the run ends with something answered.
        c.request(base("/after-storm", args.port, [tid]))
    elif sc == "flood":
        # A header block that never stops growing: HEADERS, then 300 KiB of
        # CONTINUATIONs, each frame in its own write (the kernel copies a
        # write whole up to its per-call cap), END_HEADERS at the end.
        sid = c.next_id
        c.next_id += 2
        c.streams[sid] = {"stream": sid, "sent": [], "sent_block": 0, "status": None,
                          "recv": [], "reset": None, "done": False}
        block = c.enc.encode(base("/flood", args.port, [tid]))
        c.sock.sendall(HeadersFrame(sid, block).serialize())
        chunk = c.enc.encode([("x-flood", "f" * 16000)], huffman=False)
        for i in range(20):
            f = ContinuationFrame(sid, chunk)
            if i == 19:
                f.flags.add("END_HEADERS")
            try:
                c.sock.sendall(f.serialize())
            except OSError:
                break
            c.streams[sid]["sent_block"] += len(chunk)
        c.streams[sid]["sent_block"] += len(block)
        c.report()
        return
    elif sc == "bomb":
        # One 4000-byte entry in the table, then a block that names it a
        # hundred times: about a hundred bytes that decode to ~400 KB.
        big = ("x-bomb", "b" * 4000)
        c.request(base("/arm", args.port, [tid, big]))
        c.run()
        c.report()
        fields = base("/bomb", args.port, [tid]) + [big] * 100
        c.request(fields)
        c.run(timeout=3)
        c.report()
        return
    elif sc == "bigframes":
        # The client allows 1 MiB frames and 2 GiB windows, then downloads
        # /huge-frames (4 MiB, which nginx sends in 1 MiB DATA frames with
        # http2_chunk_size 1m), reading 64 KiB at a time (5 ms apart), then
        # asks for /.
        big = 1 << 20
        c.sock.sendall(SettingsFrame(0, settings={
            SettingsFrame.MAX_FRAME_SIZE: big,
            SettingsFrame.INITIAL_WINDOW_SIZE: 2**31 - 1}).serialize()
            + WindowUpdateFrame(0, window_increment=2**31 - 1 - 65535).serialize())
        c.slow = 0.005
        c.request(base("/huge-frames", args.port, [tid]))
        c.run(timeout=30)
        c.report()
        c.slow = 0
        c.request(base("/", args.port, [tid]))
    elif sc == "keepalive":
        # Requests on one connection, the first before --hold exists: the
        # dynamic table is filled before hdrtap starts.
        c.request(base("/ka/0", args.port, [tid, ("x-long-lived", "table-entry-1")]))
        c.run()
        c.report()
        while args.hold and not os.path.exists(args.hold):
            time.sleep(0.05)
        for i in range(1, args.n + 1):
            c.request(base(f"/ka/{i}", args.port,
                           [tid, ("x-long-lived", "table-entry-1"), ("x-fresh", f"f{i}")]))
            c.run()
            c.report()
        c.close()
        return
    else:
        sys.exit(f"unknown scenario {sc}")
    c.run()
    c.report()
    c.close()


def server(args):
    """Answers prior knowledge and h2c upgrades (one connection at a time)."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(16)
    open(args.ready, "w").close()
    while True:
        s, _ = ls.accept()
        try:
            serve(s)
        except (ConnectionError, OSError):
            pass
        finally:
            s.close()


def respond(conn, sid, path):
    body = b"h2peer ok\n"
    conn.send_headers(sid, [(":status", "200"), ("x-server", "h2peer"),
                            ("x-echo-path", path), ("content-length", str(len(body)))])
    conn.send_data(sid, body, end_stream=True)


def serve(s):
    cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    conn = h2.connection.H2Connection(config=cfg)
    first = s.recv(65536)
    if first.startswith(PREFACE[:4]):
        conn.initiate_connection()
        data = first
    else:
        # HTTP/1.1 with Upgrade: h2c and HTTP2-Settings.
        while b"\r\n\r\n" not in first:
            first += s.recv(65536)
        head, rest = first.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        path = lines[0].split(" ")[1]
        hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        conn.initiate_upgrade_connection(hdrs.get("http2-settings", ""))
        respond(conn, 1, path)
        data = rest
    s.sendall(conn.data_to_send())
    while True:
        if data:
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    path = dict(ev.headers).get(":path", "/")
                    respond(conn, ev.stream_id, path)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    s.sendall(conn.data_to_send())
                    return
            s.sendall(conn.data_to_send())
        data = s.recv(65536)
        if not data:
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["client", "server"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--scenario")
    ap.add_argument("--id", default="h2peer")
    ap.add_argument("--hold")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--ready")
    args = ap.parse_args()
    if args.mode == "client":
        client(args)
    else:
        server(args)


if __name__ == "__main__":
    main()
