#!/usr/bin/env python3
"""A forwarding HTTP proxy for bench/pull: adds LATENCY seconds before each request and caps each response
body at RATE bytes/second (one response at a time per connection: a cap per connection).
Usage: slowproxy.py LISTEN_PORT UPSTREAM_PORT LATENCY RATE [LOG]
With LOG, one line per request is appended when it ends (also when the client went away mid-body):
METHOD PATH STATUS BODY_BYTES_SENT RANGE -- so that a benchmark can count the bytes each run fetched."""
import http.client, http.server, socketserver, sys, threading, time

LISTEN, UPSTREAM, LATENCY, RATE = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
LOG = open(sys.argv[5], "a", buffering=1) if len(sys.argv) > 5 else None
LOG_LOCK = threading.Lock()
HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}

def log(line):
    if LOG is None: return
    with LOG_LOCK:
        LOG.write(line + "\n")

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def forward(self):
        time.sleep(LATENCY)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=300)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["Host"] = f"127.0.0.1:{LISTEN}"
        if body is not None: headers["Content-Length"] = str(length)
        sent, status = 0, 0
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            status = answer.status
            self.send_response(answer.status, answer.reason)
            data_length = answer.getheader("Content-Length")
            for k, v in answer.getheaders():
                if k.lower() not in HOP: self.send_header(k, v)
            chunked = data_length is None and self.command != "HEAD" and answer.status not in (204, 304)
            if chunked: self.send_header("Transfer-Encoding", "chunked")
            else: self.send_header("Content-Length", data_length or "0")
            self.end_headers()
            start = time.monotonic()
            while self.command != "HEAD":
                chunk = answer.read(256 * 1024)
                if not chunk: break
                if chunked: self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else: self.wfile.write(chunk)
                sent += len(chunk)
                due = start + sent / RATE
                if due > time.monotonic(): time.sleep(due - time.monotonic())
            if chunked: self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            upstream.close()
            log(f"{self.command} {self.path} {status} {sent} {self.headers.get('Range') or '-'}")
    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

Server(("127.0.0.1", LISTEN), Handler).serve_forever()
