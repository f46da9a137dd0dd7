"""Load: KServe pods created by concurrent clients, with the policy's webhook in the chain and
without it (KServe's stand-in only), measured as each create's round trip."""

import math
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from cases import KSERVE_POD, case
from pods import expect, fixture_pod, init_containers

PODS = int(os.environ.get("E2E_CLUSTER_LOAD_PODS", "200"))
CLIENTS = int(os.environ.get("E2E_CLUSTER_LOAD_CLIENTS", "8"))
WARMUP = 16
ROUNDS = 4


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _create_all(api, namespace, count, label):
    """Returns (seconds per create, failures)."""
    pods = [fixture_pod(KSERVE_POD, namespace, prefix=label) for _ in range(count)]
    failures = []
    lock = threading.Lock()

    def one(pod):
        r = api.post(f"/api/v1/namespaces/{namespace}/pods", pod)
        if r.status != 201:
            with lock:
                failures.append(f"{pod['metadata']['name']}: HTTP {r.status}: {str(r.body)[:500]}")
        return r.seconds

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        seconds = list(pool.map(one, pods))
    return seconds, failures


def _stats(seconds):
    ms = [s * 1000 for s in seconds]
    return statistics.median(ms), percentile(ms, 99)


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
