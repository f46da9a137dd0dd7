"""The Kubernetes REST API, spoken directly: a static bearer token, our CA, JSON in and out.
One keep-alive connection per thread, so concurrent clients do not share a socket."""

import http.client
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field

WARNING = re.compile(r'^\d{3} \S+ "((?:[^"\\]|\\.)*)"')


@dataclass
class Response:
    status: int
    body: object
    warnings: list = field(default_factory=list)
    seconds: float = 0.0

    def ok(self):
        return 200 <= self.status < 300


class ApiError(Exception):
    pass


def _warning_texts(headers):
    texts = []
    for raw in headers.get_all("Warning") or []:
        m = WARNING.match(raw)
        texts.append(m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m else raw)
    return texts


class Api:
    def __init__(self, port, token, ca_file):
        self.port = port
        self.token = token
        self.context = ssl.create_default_context(cafile=ca_file)
        self.local = threading.local()

    def _connection(self, fresh=False):
        if fresh or getattr(self.local, "conn", None) is None:
            self.local.conn = http.client.HTTPSConnection("127.0.0.1", self.port,
                                                          context=self.context, timeout=60)
        return self.local.conn

    def request(self, method, path, body=None, content_type="application/json"):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt > 0)
            start = time.perf_counter()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: one retry on a new one.
                if attempt:
                    raise
                continue
            seconds = time.perf_counter() - start
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return Response(resp.status, parsed, _warning_texts(resp.headers), seconds)

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body)

    def merge_patch(self, path, body):
        return self.request("PATCH", path, body, "application/merge-patch+json")

    def must(self, response, what):
        if not response.ok():
            raise ApiError(f"{what}: HTTP {response.status}: {json.dumps(response.body)[:2000]}")
        return response.body
