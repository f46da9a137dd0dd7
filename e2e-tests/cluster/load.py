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
    runs = {}
    for namespace, label in (("load-kserve-only", "without"), ("load-with-policy", "with")):
        _create_all(api, namespace, WARMUP, f"warmup-{label}")
        start = time.perf_counter()
        seconds, failures = _create_all(api, namespace, PODS, f"load-{label}")
        wall = time.perf_counter() - start
        expect(not failures, f"{len(failures)} of {PODS} creates failed in {namespace}:\n"
               + "\n".join(failures[:5]))
        runs[label] = (seconds, wall)
    listed = api.must(api.get("/api/v1/namespaces/load-with-policy/pods"), "list pods")["items"]
    measured = [p for p in listed if p["metadata"]["name"].startswith("load-with-")]
    prefetched = [p for p in measured
                  if [c["name"] for c in init_containers(p)] == ["modelcar-prefetch"]]
    expect(len(measured) == PODS and len(prefetched) == PODS,
           f"{len(measured)} pods stored, {len(prefetched)} with modelcar-prefetch; expected {PODS}")
    lines = []
    for label in ("without", "with"):
        seconds, wall = runs[label]
        p50, p99 = _stats(seconds)
        lines.append(f"{label} the policy: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                     f"{PODS / wall:.0f} pods/s")
    return "; ".join(lines)
