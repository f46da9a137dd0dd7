"""The API server's audit log: the ResponseComplete event of a pod's create, and the
admission annotations in it."""

import json
import re
import time

MUTATION = re.compile(r"^mutation\.webhook\.admission\.k8s\.io/round_(\d+)_index_(\d+)$")


def create_event(audit_log, namespace, name, timeout=10.0):
    """The event is written when the request completes, which may be just after the client
    has its response: poll for it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(audit_log) as f:
                for line in f:
                    if f'"{name}"' not in line:
                        continue
                    event = json.loads(line)
                    ref = event.get("objectRef") or {}
                    if (event.get("verb") == "create" and event.get("stage") == "ResponseComplete"
                            and ref.get("resource") == "pods" and not ref.get("subresource")
                            and ref.get("namespace") == namespace and ref.get("name") == name):
                        return event
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def webhook_calls(event):
    """[(round, configuration, webhook, mutated)] in the order the API server made them."""
    calls = []
    for key, value in (event.get("annotations") or {}).items():
        m = MUTATION.match(key)
        if m:
            v = json.loads(value)
            calls.append((int(m.group(1)), int(m.group(2)), v["configuration"], v["webhook"],
                          v["mutated"]))
    return [(r, conf, hook, mutated) for r, _, conf, hook, mutated in sorted(calls)]
