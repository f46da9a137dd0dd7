"""Faults: policy-server killed, or frozen past the webhook's timeout, while clients create
pods behind a webhook with failurePolicy: Ignore (what the README recommends). Every create
gets an answer and stores its pod once; pods admitted while policy-server is away are stored
without the prefetch, pods created once it is back are mutated again. The latency each phase
adds is printed, not asserted."""

import itertools
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass

from cases import KSERVE_POD, case
from harness import wait_until
from load import CLIENTS, create_pods, latency_ms
from pods import containers, expect, fixture_pod, init_containers
from topology import policy

IGNORE = policy("prefetch-ignore")
TIMEOUT = IGNORE.timeout_seconds
RATE = 20  # creates per second the clients aim at; behind schedule they catch up at once
FAULT_AT = 4.0  # seconds of load before the fault
DOWN = 3.0  # seconds policy-server stays killed
FROZEN = TIMEOUT + 2  # past the webhook's timeout: the API server gives up and ignores it
AFTER = 4.0  # seconds of load once policy-server is back
# Functional bound: policy-server must come back; a restart takes a few seconds.
COME_BACK = 120
PHASES = ("before", "during", "after")


@dataclass
class Window:
    """The fault in time.monotonic(): signal sent, signal in effect, recovery begun (restart
    or SIGCONT), policy-server ready."""
    begin: float
    away: float
    recover: float
    back: float

    def expected(self, c):
        """What a create must have stored: answered before the fault or sent once
        policy-server is ready, the prefetch; sent and answered while policy-server was away,
        none; in flight at a boundary (None), either."""
        if c.answered < self.begin or c.sent > self.back:
            return "mutated"
        if c.sent > self.away and c.answered < self.recover:
            return "unmutated"
        return None

    def phase(self, c):
        if c.sent < self.begin:
            return "before"
        return "during" if c.sent < self.back else "after"

    def at(self, c):
        """When the create was sent and answered, from the signal."""
        sent, answered = c.sent - self.begin, c.answered - self.begin
        return f"{c.name} sent {sent:+.2f}s, answered {answered:+.2f}s"


def stored_state(pod):
    inits = [c["name"] for c in init_containers(pod)]
    names = [c["name"] for c in containers(pod)]
    if inits == ["modelcar-prefetch"]:
        return "mutated"
    if not inits and names == ["kserve-container", "modelcar"]:
        return "unmutated"  # KServe's modelcar only: the pod as the policy never saw it
    return f"neither: init containers {inits}, containers {names}"


def paced_pods(namespace, t0, stop):
    """KServe pods due RATE per second from t0 until stop[0] (set once the fault is over)."""
    for i in itertools.count():
        due = t0 + i / RATE
        if due > stop[0]:
            return
        yield fixture_pod(KSERVE_POD, namespace, prefix="fault"), due


def under_load(cluster, namespace, fault):
    """Creates pods from CLIENTS clients; FAULT_AT seconds in, runs fault(policy_server), which
    returns a Window; goes on AFTER seconds once policy-server is back. Returns (the creates,
    the Window)."""
    t0 = time.monotonic() + 0.2
    stop = [math.inf]
    created = []
    load = threading.Thread(target=lambda: created.extend(
        create_pods(cluster.api, namespace, paced_pods(namespace, t0, stop))))
    load.start()
    window = None
    try:
        time.sleep(max(0.0, t0 + FAULT_AT - time.monotonic()))
        window = fault(cluster.plane.policy_server)
    finally:
        stop[0] = window.back + AFTER if window else -math.inf
        load.join()
    return created, window


def kill_and_restart(policy_server):
    begin = time.monotonic()
    policy_server.kill()
    away = time.monotonic()
    time.sleep(DOWN)
    recover = time.monotonic()
    policy_server.start(timeout=COME_BACK)
    return Window(begin, away, recover, time.monotonic())


def freeze_and_thaw(policy_server):
    begin = time.monotonic()
    policy_server.freeze()
    try:
        wait_until("policy-server stopped by SIGSTOP", policy_server.frozen, 10, 0.01)
        away = time.monotonic()
        time.sleep(FROZEN)
        recover = time.monotonic()
    finally:
        policy_server.thaw()
    policy_server.wait_ready(COME_BACK)
    return Window(begin, away, recover, time.monotonic())


def check(cluster, namespace, created, window):
    """The assertions common to every fault; returns the figures to print."""
    failed = [c for c in created if c.status != 201]
    expect(not failed, f"{len(failed)} of {len(created)} creates got no 201:\n"
           + "\n".join(f"{window.at(c)}: {c.failure()}" for c in failed[:10]))
    api = cluster.api
    listed = api.must(api.get(f"/api/v1/namespaces/{namespace}/pods"), "list pods")["items"]
    names = Counter(p["metadata"]["name"] for p in listed)
    sent = {c.name for c in created}
    expect(set(names) == sent and max(names.values()) == 1,
           f"{len(created)} pods created, {len(listed)} listed: missing "
           f"{sorted(sent - set(names))[:10]}, unexpected {sorted(set(names) - sent)[:10]}, "
           f"listed twice {sorted(n for n, k in names.items() if k > 1)[:10]}")
    stored = {p["metadata"]["name"]: stored_state(p) for p in listed}
    wrong = []
    for c in created:
        want = window.expected(c)
        if stored[c.name] not in ("mutated", "unmutated") or (want and stored[c.name] != want):
            wrong.append(f"{window.at(c)}: stored {stored[c.name]}, expected {want or 'either'}")
    expect(not wrong, f"{len(wrong)} pods stored otherwise than expected (policy-server away "
           f"{window.away - window.begin:+.2f}s to {window.recover - window.begin:+.2f}s, back "
           f"{window.back - window.begin:+.2f}s):\n" + "\n".join(wrong[:20]))
    strict = Counter(window.expected(c) for c in created)
    expect(strict["mutated"] and strict["unmutated"],
           f"no create fell wholly before, inside or after the fault ({dict(strict)}): the case "
           "shows nothing; see the phases")
    lines = [f"policy-server away {window.recover - window.begin:.1f}s, ready "
             f"{window.back - window.recover:.1f}s after recovery began; "
             f"{strict[None]} creates in flight at a boundary (either)"]
    for phase in PHASES:
        group = [c for c in created if window.phase(c) == phase]
        if not group:
            lines.append(f"{phase}: no pods")
            continue
        p50, p99, most = latency_ms([c.seconds for c in group])
        unmutated = sum(stored[c.name] == "unmutated" for c in group)
        lines.append(f"{phase}: {len(group)} pods, create p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
                     f"max {most:.0f} ms, {unmutated} unmutated")
    return "\n    ".join(lines)


UNDER = (f"failurePolicy Ignore, timeoutSeconds {TIMEOUT} (Kubewarden's default: 10), "
         f"{CLIENTS} clients creating pods")
PROMISE = ("every create answered, each pod stored once; unmutated while it is away, mutated "
           "once it is back")


@case(f"faults: policy-server SIGKILLed, restarted on its ports {DOWN:.0f}s later; {UNDER}: "
      f"{PROMISE}")
def policy_server_killed(cluster):
    created, window = under_load(cluster, "faults-kill", kill_and_restart)
    return check(cluster, "faults-kill", created, window)


@case(f"faults: policy-server frozen (SIGSTOP) {FROZEN}s, past the webhook's timeout, then "
      f"thawed; {UNDER}: {PROMISE}")
def policy_server_frozen(cluster):
    created, window = under_load(cluster, "faults-freeze", freeze_and_thaw)
    return check(cluster, "faults-freeze", created, window)
