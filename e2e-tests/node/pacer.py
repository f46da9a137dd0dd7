#!/usr/bin/env python3
"""A slow link in front of the test registry: an HTTP/1.1 proxy that paces blob bodies.

The node pulls through it (its address is the registry host in every image reference), so a
model of a few hundred MiB takes as long to pull as a many-GB model does on a real network:
long enough for the kubelet's pull-then-start order to matter. tc netem is not in this
kernel, and a byte budget gives exact rates anyway. The budget is one for all connections
(containerd fetches layers in parallel), as one link would be.

FLAKY mode cuts off the first GET of each large blob of a model repository mid-body (the
connection is closed after part of the announced Content-Length), as a registry or a proxy
that drops connections does:
- `cut`: later GETs of that blob succeed. containerd (1.6 and later) resumes a cut body with
  a Range request in the same pull, so the pull succeeds, only later;
- `fail`: after the cut, every GET of that blob gets a 503 for `fail_seconds` (the registry
  is down for a moment), which fails the pull once containerd's own retries are spent: the
  kubelet sees ErrImagePull, backs off and pulls again.

Control endpoints, beside the registry's /v2/ API:
  GET  /_pacer/healthz
  GET  /_pacer/stats    {"config": ..., "transfers": [one per blob GET]}
  POST /_pacer/reset    forget transfers and which blobs were cut
  POST /_pacer/config   JSON {"rate": bytes/s (0: unpaced), "flaky": "" | "cut" | "fail", ...}

  pacer.py --port P --upstream 127.0.0.1:R [--rate-mib 8] [--flaky cut|fail]
"""

import argparse
import http.client
import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOB = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>[a-z0-9]+:[0-9a-f]+)$")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade", "proxy-connection"}
CHUNK = 64 * 1024


class Pacer:
    """The configuration, the shared byte budget and what was sent."""

    def __init__(self, upstream, rate, flaky, flaky_repos, flaky_min_bytes, cut_fraction,
                 fail_seconds):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.config = {"rate": rate, "flaky": flaky, "flaky_repos": flaky_repos,
                       "flaky_min_bytes": flaky_min_bytes, "cut_fraction": cut_fraction,
                       "fail_seconds": fail_seconds}
        self.next_free = 0.0
        self.cut_times = {}  # digest -> when its first GET was cut (FLAKY mode)
        self.transfers = []

    def take(self, n):
        """Waits until the link has room for `n` more bytes: every connection draws on the
        same budget, so the total rate is `rate` however many layers are fetched at once."""
        with self.lock:
            rate = self.config["rate"]
            if not rate:
                return
            now = time.monotonic()
            start = max(now, self.next_free)
            self.next_free = start + n / rate
        if start > now:
            time.sleep(start - now)

    def flaw(self, repo, digest, length):
        """What to do to this GET of a blob: None (send it whole), ("cut", after N bytes)
        or ("refuse", 503)."""
        with self.lock:
            c = self.config
            if (c["flaky"] not in ("cut", "fail") or length < c["flaky_min_bytes"]
                    or not re.search(c["flaky_repos"], repo)):
                return None
            if digest not in self.cut_times:
                self.cut_times[digest] = None  # set when the cut happens
                return ("cut", max(1, int(length * c["cut_fraction"])))
            cut = self.cut_times[digest]
            if c["flaky"] == "fail" and cut is not None and \
                    time.monotonic() - cut < c["fail_seconds"]:
                return ("refuse", 503)
            return None

    def mark_cut(self, digest):
        with self.lock:
            self.cut_times[digest] = time.monotonic()

    def record(self, transfer):
        with self.lock:
            self.transfers.append(transfer)

    def stats(self):
        with self.lock:
            return {"config": dict(self.config), "transfers": list(self.transfers)}

    def reset(self):
        with self.lock:
            self.cut_times.clear()
            self.transfers.clear()

    def configure(self, changes):
        with self.lock:
            unknown = set(changes) - set(self.config)
            if unknown:
                raise ValueError(f"unknown settings {sorted(unknown)}")
            if changes.get("flaky") not in (None, "", "cut", "fail"):
                raise ValueError("flaky: one of '', 'cut', 'fail'")
            self.config.update(changes)
            return dict(self.config)


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pacer = None  # set on the class by main()

    def setup(self):
        super().setup()
        self.upstream = None

    def finish(self):
        self._drop_upstream()
        super().finish()

    def _drop_upstream(self):
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    def do_GET(self):
        self.forward()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _request_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            # Pulls send no bodies; pushes go to the registry directly.
            raise ValueError("chunked request bodies are not supported")
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _ask_upstream(self, body):
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
        headers["Host"] = self.pacer.upstream
        host, port = self.pacer.upstream.rsplit(":", 1)
        for attempt in (0, 1):
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(host, int(port), timeout=60)
            try:
                self.upstream.request(self.command, self.path, body, headers)
                return self.upstream.getresponse()
            except (OSError, http.client.HTTPException):
                # The registry closed an idle keep-alive connection: once more on a new one.
                self._drop_upstream()
                if attempt:
                    raise

    def _send_head(self, status, reason, headers, length):
        self.send_response_only(status, reason)
        for k, v in headers:
            if k.lower() in HOP_BY_HOP or k.lower() == "content-length":
                continue
            if k.lower() == "location":
                # A redirect to the registry itself must come back through the pacer.
                v = re.sub(r"^https?://(127\.0\.0\.1|localhost):\d+",
                           f"http://{self.headers.get('Host', '')}", v)
            self.send_header(k, v)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def forward(self):
        if self.path.startswith("/_pacer/"):
            return self.control()
        started = time.time()
        try:
            resp = self._ask_upstream(self._request_body())
        except (OSError, http.client.HTTPException, ValueError) as e:
            self.send_error(502, f"pacer: upstream: {e}")
            return
        path = self.path.split("?", 1)[0]
        blob = BLOB.match(path) if self.command == "GET" and resp.status in (200, 206) else None
        length = resp.getheader("Content-Length")
        if self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200:
            resp.read()
            self._send_head(resp.status, resp.reason, resp.getheaders(), length)
            self.log_request(resp.status, length or "-")
            return
        if length is None or not blob:
            # Manifests, errors and anything chunked: small, sent whole and unpaced.
            data = resp.read()
            self._send_head(resp.status, resp.reason, resp.getheaders(), len(data))
            self.wfile.write(data)
            self.log_request(resp.status, len(data))
            return
        self._send_blob(resp, blob, int(length), started)

    def _send_blob(self, resp, blob, length, started):
        repo, digest = blob["repo"], blob["digest"]
        flaw = self.pacer.flaw(repo, digest, length)
        cut_at = flaw[1] if flaw and flaw[0] == "cut" else None
        transfer = {"repo": repo, "digest": digest, "range": self.headers.get("Range"),
                    "status": resp.status, "length": length, "sent": 0, "cut": False,
                    "client_closed": False, "start": started}
        if flaw and flaw[0] == "refuse":
            self._drop_upstream()  # its body is unread
            transfer.update(status=flaw[1], seconds=round(time.time() - started, 3))
            self.pacer.record(transfer)
            self.send_error(flaw[1], "pacer: flaky registry")
            return
        self._send_head(resp.status, resp.reason, resp.getheaders(), length)
        try:
            while transfer["sent"] < length:
                n = min(CHUNK, length - transfer["sent"])
                if cut_at is not None:
                    n = min(n, cut_at - transfer["sent"])
                    if n <= 0:
                        transfer["cut"] = True
                        self.pacer.mark_cut(digest)
                        break
                data = resp.read(n)
                if not data:
                    break  # the registry stopped early: the client sees a short body
                self.pacer.take(len(data))
                self.wfile.write(data)
                transfer["sent"] += len(data)
        except (BrokenPipeError, ConnectionResetError):
            transfer["client_closed"] = True
        transfer["seconds"] = round(time.time() - started, 3)
        self.pacer.record(transfer)
        if transfer["sent"] < length:
            # The rest of the upstream body is unread: that connection cannot be reused, and
            # the client must see the cut as a closed connection.
            self._drop_upstream()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.log_message('"%s" %s %s/%s bytes in %.2fs%s', self.requestline, resp.status,
                         transfer["sent"], length, transfer["seconds"],
                         " CUT" if transfer["cut"] else "")

    def control(self):
        path = self.path.split("?", 1)[0]
        try:
            if self.command == "GET" and path == "/_pacer/healthz":
                return self._json(200, {"ok": True})
            if self.command == "GET" and path == "/_pacer/stats":
                return self._json(200, self.pacer.stats())
            if self.command == "POST" and path == "/_pacer/reset":
                self._request_body()
                self.pacer.reset()
                return self._json(200, {"ok": True})
            if self.command == "POST" and path == "/_pacer/config":
                changes = json.loads(self._request_body() or b"{}")
                return self._json(200, self.pacer.configure(changes))
            return self._json(404, {"error": f"no {self.command} {path}"})
        except ValueError as e:
            return self._json(400, {"error": str(e)})

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stdout.write(f"{time.strftime('%H:%M:%S')} {self.address_string()} {fmt % args}\n")
        sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the registry, host:port")
    parser.add_argument("--rate-mib", type=float, default=8.0,
                        help="MiB/s for all blob bodies together; 0: unpaced")
    parser.add_argument("--flaky", choices=("cut", "fail"), default="")
    parser.add_argument("--flaky-repos", default="models",
                        help="regex on the repository of blobs that FLAKY mode cuts")
    parser.add_argument("--flaky-min-bytes", type=int, default=1 << 20)
    parser.add_argument("--cut-fraction", type=float, default=0.5)
    parser.add_argument("--fail-seconds", type=float, default=5.0,
                        help="FLAKY=fail: how long GETs of a cut blob get 503")
    args = parser.parse_args()
    Proxy.pacer = Pacer(args.upstream, args.rate_mib * (1 << 20), args.flaky, args.flaky_repos,
                        args.flaky_min_bytes, args.cut_fraction, args.fail_seconds)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Proxy)
    server.daemon_threads = True
    print(f"pacer: 127.0.0.1:{args.port} -> {args.upstream}, {Proxy.pacer.config}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
