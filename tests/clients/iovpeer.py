#!/usr/bin/env python3
"""An HTTP/1.1 server that writes every response with ONE sendmsg of TWO
iovecs, and its client, for hdrtap's integration tests (stdlib only).

The kernel side of hdrtap copies the header block of such a response and
only announces the second iovec when it is a body whose bytes nobody needs;
these cases check that it does so where it may and never where the second
iovec holds framing the parser must read. Usage:

  iovpeer.py PORT TEST_ID

The server listens on 127.0.0.1:PORT; the client (this process's main
thread) connects once, keep-alive, and sends, in this order:

  GET /cl?n=1..3    200, Content-Length 1000, a body of '<p>...' (skippable)
  GET /chunked      200, chunked, chunk size '1f4' (framing: copied)
  GET /chunked0     200, chunked, chunk size '000001f4' (framing: copied)
  GET /hexbody      200, Content-Length 600, the body starts 'cafe babe'
                    (looks like a chunk size: copied, parsed as body)
  GET /small        200, Content-Length 40 (too short to skip: copied)
  HEAD /head + GET /after, pipelined: ONE sendmsg of [the HEAD's answer
                    (Content-Length 1000, no body), the GET's whole
                    response] (the second iovec starts with 'HTTP/': copied)
  GET /last         200, Content-Length 1000 (skippable)

Every request carries X-Test-Id; every response X-Case: <path>. The client
reads each response whole (by its framing) before sending the next request.
Prints one JSON line per response the client read, then
{"event":"done","skippable_bytes":N}: N is the sum of the body bytes the
kernel may skip (the second iovecs of /cl and /last).
"""
import json
import socket
import sys
import threading

BODY_CL = b"<p>" + b"x" * 993 + b"</p>"  # 1000 bytes
assert len(BODY_CL) == 1000


def head(status, reason, case, fields):
    lines = [f"HTTP/1.1 {status} {reason}", f"X-Case: {case}", "Server: iovpeer"]
    lines += [f"{k}: {v}" for k, v in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def response(path):
    """The two iovecs answering GET path."""
    case = path.split("?")[0]
    if case in ("/cl", "/last", "/after"):
        return head(200, "OK", case, [("Content-Length", "1000")]), BODY_CL
    if case == "/chunked":
        data = b"c" * 500
        body = b"1f4\r\n" + data + b"\r\n0\r\n\r\n"
        return head(200, "OK", case, [("Transfer-Encoding", "chunked")]), body
    if case == "/chunked0":
        data = b"z" * 500
        body = b"000001f4\r\n" + data + b"\r\n0\r\n\r\n"
        return head(200, "OK", case, [("Transfer-Encoding", "chunked")]), body
    if case == "/hexbody":
        body = b"cafe babe " + b"h" * 590
        return head(200, "OK", case, [("Content-Length", str(len(body)))]), body
    if case == "/small":
        body = b"s" * 40
        return head(200, "OK", case, [("Content-Length", "40")]), body
    return head(404, "Not Found", case, [("Content-Length", "0")]), b""


def read_head(f):
    start = f.readline()
    if not start:
        return None, None
    fields = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        fields[k.strip().lower()] = v.strip()
    return start.decode("latin-1").strip(), fields


def serve(listener):
    conn, _ = listener.accept()
    f = conn.makefile("rb")
    held = None  # the HEAD's answer, sent with the next response
    while True:
        start, _ = read_head(f)
        if start is None:
            break
        method, path, _ = start.split(" ", 2)
        if method == "HEAD":
            held = head(200, "OK", path, [("Content-Length", "1000")])
            continue
        hdr, body = response(path)
        if held is not None:
            # [HEAD's answer, this whole response]: the second iovec starts
            # with a status line.
            iovs = [held, hdr + body]
            held = None
        else:
            iovs = [hdr, body]
        total = sum(len(b) for b in iovs)
        sent = conn.sendmsg(iovs)
        assert sent == total, f"short sendmsg: {sent} of {total}"
    f.close()
    conn.close()


def read_response(f, is_head):
    start, fields = read_head(f)
    assert start is not None, "server closed early"
    body = b""
    if not is_head:
        if fields.get("transfer-encoding") == "chunked":
            while True:
                size = int(f.readline().split(b";")[0], 16)
                if size == 0:
                    f.readline()
                    break
                body += f.read(size)
                f.readline()
        else:
            body = f.read(int(fields.get("content-length", "0")))
    return {
        "event": "response",
        "status": int(start.split(" ")[1]),
        "case": fields.get("x-case"),
        "body_bytes": len(body),
    }


def main():
    port, test_id = int(sys.argv[1]), sys.argv[2]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    server = threading.Thread(target=serve, args=(listener,))
    server.start()

    c = socket.create_connection(("127.0.0.1", port))
    f = c.makefile("rb")

    def req(method, path):
        return (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"X-Test-Id: {test_id}\r\n\r\n"
        ).encode()

    out = []
    for path in ["/cl?n=1", "/cl?n=2", "/cl?n=3", "/chunked", "/chunked0", "/hexbody", "/small"]:
        c.sendall(req("GET", path))
        out.append(read_response(f, False))
    c.sendall(req("HEAD", "/head") + req("GET", "/after"))
    out.append(read_response(f, True))
    out.append(read_response(f, False))
    c.sendall(req("GET", "/last"))
    out.append(read_response(f, False))
    f.close()  # the file holds the socket open too
    c.close()
    server.join()
    for r in out:
        print(json.dumps(r))
    print(json.dumps({"event": "done", "skippable_bytes": 4 * len(BODY_CL)}))


if __name__ == "__main__":
    main()
