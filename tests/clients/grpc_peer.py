#!/usr/bin/env python3
"""gRPC peers (grpcio, no generated code) for hdrtap's tests.

    grpc_peer.py server --port P --ready FILE
    grpc_peer.py client --port P --id ID

The service `hdrtap.test.Echo` has two unary methods over raw bytes: `Say`
answers OK with trailing metadata `x-trailer: t1`; `Fail` aborts with
NOT_FOUND and a message that needs percent-encoding on the wire. The client
calls both with metadata `x-test-id: ID` and `x-client-meta: m1` and prints
one JSON line per call: method, code, details, trailing metadata.
"""
import argparse
import json
import time
from concurrent import futures

import grpc

SERVICE = "hdrtap.test.Echo"
FAIL_MESSAGE = "no such thing: \u00fcber/100%"


def say(request, context):
    context.set_trailing_metadata((("x-trailer", "t1"),))
    return b"echo:" + request


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, FAIL_MESSAGE)


def server(args):
    s = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    })
    s.add_generic_rpc_handlers((handler,))
    s.add_insecure_port(f"127.0.0.1:{args.port}")
    s.start()
    open(args.ready, "w").close()
    while True:
        time.sleep(3600)


def client(args):
    meta = (("x-test-id", args.id), ("x-client-meta", "m1"))
    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as ch:
        for method in ("Say", "Fail"):
            call = ch.unary_unary(f"/{SERVICE}/{method}")
            try:
                _, c = call.with_call(b"hello", metadata=meta, timeout=10)
                out = {"method": method, "code": c.code().value[0], "details": c.details(),
                       "trailing": [list(kv) for kv in c.trailing_metadata() or ()]}
            except grpc.RpcError as e:
                out = {"method": method, "code": e.code().value[0], "details": e.details(),
                       "trailing": [list(kv) for kv in e.trailing_metadata() or ()]}
            print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["client", "server"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--id", default="grpc")
    ap.add_argument("--ready")
    args = ap.parse_args()
    client(args) if args.mode == "client" else server(args)


if __name__ == "__main__":
    main()
