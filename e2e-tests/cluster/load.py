"""Load: KServe pods created by concurrent clients, with the policy's webhook in the chain and
without it (KServe's stand-in only), measured as each create's round trip. Its clients
(create_pods) also drive the fault cases."""

import math
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cases import KSERVE_POD, case
from pods import expect, fixture_pod, init_containers

PODS = int(os.environ.get("E2E_CLUSTER_LOAD_PODS", "200"))
CLIENTS = int(os.environ.get("E2E_CLUSTER_LOAD_CLIENTS", "8"))
WARMUP = 16
ROUNDS = 4


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Created:
    """One create as its client saw it; times are time.monotonic()."""
    name: str
    sent: float
    answered: float
    status: int  # 0: no HTTP answer (the client's error is in `error`)
    error: str = ""

    @property
    def seconds(self):
        return self.answered - self.sent

    def failure(self):
        return f"{self.name}: HTTP {self.status}: {self.error[:500]}"


def create_pods(api, namespace, pods, clients=CLIENTS):
    """`pods` yields (pod, due): each of `clients` concurrent clients takes the next one, waits
    until `due` (time.monotonic(); None for at once) and creates it. Returns a Created per pod,
    in the order `pods` yielded them."""
    pods = iter(pods)
    lock = threading.Lock()
    created = []

    def take():
        with lock:
            item = next(pods, None)
            if item is not None:
                created.append(None)
                return len(created) - 1, item
            return None, None

    def client():
        while True:
            index, item = take()
            if item is None:
                return
            pod, due = item
            if due is not None:
                time.sleep(max(0.0, due - time.monotonic()))
            name = pod["metadata"]["name"]
            sent = time.monotonic()
            try:
                r = api.post(f"/api/v1/namespaces/{namespace}/pods", pod)
                result = Created(name, sent, time.monotonic(), r.status,
                                 "" if r.status == 201 else str(r.body))
            except Exception as e:  # the client got no answer: what the case reports
                result = Created(name, sent, time.monotonic(), 0, repr(e))
            created[index] = result

    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return created


def latency_ms(seconds):
    """p50, p99 and max, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return statistics.median(ms), percentile(ms, 99), max(ms)


def _create_all(api, namespace, count, label):
    """Returns (seconds per create, failures)."""
    pods = [fixture_pod(KSERVE_POD, namespace, prefix=label) for _ in range(count)]
    created = create_pods(api, namespace, ((pod, None) for pod in pods))
    return [c.seconds for c in created], [c.failure() for c in created if c.status != 201]


def _stats(seconds):
    p50, p99, _ = latency_ms(seconds)
    return p50, p99


@case(f"load: {PODS} KServe pods from {CLIENTS} clients, all admitted; p50/p99 with and without "
      "the policy")
def load(cluster):
    api = cluster.api
    setups = (("load-kserve-only", "without"), ("load-with-policy", "with"))
    seconds = {label: [] for _, label in setups}
    wall = {label: 0.0 for _, label in setups}
    for namespace, label in setups:
        _create_all(api, namespace, WARMUP, f"warmup-{label}")
    # Alternating rounds, so that drift (other work on the machine, etcd growing) falls on
    # both setups alike.
    per_round = PODS // ROUNDS
    for _ in range(ROUNDS):
        for namespace, label in setups:
            start = time.perf_counter()
            taken, failures = _create_all(api, namespace, per_round, f"load-{label}")
            wall[label] += time.perf_counter() - start
            expect(not failures, f"{len(failures)} of {per_round} creates failed in {namespace}:\n"
                   + "\n".join(failures[:5]))
            seconds[label] += taken
    total = per_round * ROUNDS
    listed = api.must(api.get("/api/v1/namespaces/load-with-policy/pods"), "list pods")["items"]
    measured = [p for p in listed if p["metadata"]["name"].startswith("load-with-")]
    prefetched = [p for p in measured
                  if [c["name"] for c in init_containers(p)] == ["modelcar-prefetch"]]
    expect(len(measured) == total and len(prefetched) == total,
           f"{len(measured)} pods stored, {len(prefetched)} with modelcar-prefetch; expected {total}")
    lines = []
    for _, label in setups:
        p50, p99 = _stats(seconds[label])
        lines.append(f"{label} the policy: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                     f"{total / wall[label]:.0f} pods/s")
    return "; ".join(lines)
