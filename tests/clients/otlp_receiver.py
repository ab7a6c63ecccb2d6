#!/usr/bin/env python3
"""OTLP logs receiver for hdrtap's integration tests.

Decodes what it receives with the official OpenTelemetry protobuf schema
(PyPI package opentelemetry-proto; grpcio for OTLP/gRPC), and appends one
JSON object per log record to --out:

  {"transport": "http"|"grpc", "resource": {k: v}, "scope": {"name", "version"},
   "time_unix_nano": N, "observed_time_unix_nano": N, "severity_number": N,
   "severity_text": "...", "event_name": "...", "body": "...",
   "attributes": {key: value}}      (values: str, int, bool, float, list, dict)

Listens on 127.0.0.1: OTLP/HTTP (POST /v1/logs, protobuf, gzip accepted)
with --http-port, OTLP/gRPC (LogsService/Export) with --grpc-port; port 0
picks a free one. Prints {"event": "listening", "http_port": N,
"grpc_port": N} on stdout once both accept, then serves until SIGTERM/SIGINT.
--status N answers every HTTP request with status N instead (no decoding).
"""
import argparse
import gzip
import json
import signal
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as svc

LOCK = threading.Lock()


def value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def attrs(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


def record(out, transport, req):
    lines = []
    for rl in req.resource_logs:
        res = attrs(rl.resource.attributes)
        for sl in rl.scope_logs:
            scope = {"name": sl.scope.name, "version": sl.scope.version}
            for lr in sl.log_records:
                lines.append(json.dumps({
                    "transport": transport,
                    "resource": res,
                    "scope": scope,
                    "time_unix_nano": lr.time_unix_nano,
                    "observed_time_unix_nano": lr.observed_time_unix_nano,
                    "severity_number": lr.severity_number,
                    "severity_text": lr.severity_text,
                    "event_name": lr.event_name,
                    "body": value(lr.body),
                    "attributes": attrs(lr.attributes),
                }))
    with LOCK:
        with open(out, "a", encoding="utf-8") as f:
            for l in lines:
                f.write(l + "\n")


def http_server(port, out, status):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            if status != 200:
                self.reply(status, b"")
                return
            if self.path != "/v1/logs":
                self.reply(404, b"")
                return
            try:
                if self.headers.get("Content-Encoding", "") == "gzip":
                    body = gzip.decompress(body)
                req = svc.ExportLogsServiceRequest.FromString(body)
            except Exception as e:  # noqa: BLE001 - report any decoding error
                sys.stderr.write(f"bad request: {e}\n")
                self.reply(400, b"")
                return
            record(out, "http", req)
            self.reply(200, svc.ExportLogsServiceResponse().SerializeToString())

        def reply(self, code, payload):
            self.send_response(code)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def grpc_server(port, out):
    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as svc_grpc

    class Logs(svc_grpc.LogsServiceServicer):
        def Export(self, request, context):
            record(out, "grpc", request)
            return svc.ExportLogsServiceResponse()

    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    svc_grpc.add_LogsServiceServicer_to_server(Logs(), srv)
    bound = srv.add_insecure_port(f"127.0.0.1:{port}")
    srv.start()
    return srv, bound


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--http-port", type=int)
    ap.add_argument("--grpc-port", type=int)
    ap.add_argument("--status", type=int, default=200)
    a = ap.parse_args()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    info = {"event": "listening"}
    http = grpc_srv = None
    if a.http_port is not None:
        http = http_server(a.http_port, a.out, a.status)
        info["http_port"] = http.server_address[1]
    if a.grpc_port is not None:
        grpc_srv, bound = grpc_server(a.grpc_port, a.out)
        info["grpc_port"] = bound
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    done.wait()
    if http:
        http.shutdown()
    if grpc_srv:
        grpc_srv.stop(0)


if __name__ == "__main__":
    main()
