"""Following one pod on the real node: what the kubelet did with it, from creation to Ready.

The API is polled every 150 ms (the kubelet writes the pod's status after each sync; a
watch would show the same writes, and polling keeps the client simple). Times are taken on
this side, from just before the create request: the API's own timestamps have one-second
resolution.
"""

import json
import re
import time
import urllib.parse
from dataclasses import asdict, dataclass, field

from pods import containers, init_containers

POLL_SECONDS = 0.15
# "Successfully pulled image \"X\" in 27.1s (27.1s including waiting). Image size: N bytes."
PULLED = re.compile(r'Successfully pulled image "(?P<image>[^"]+)" in (?P<pull>\S+) '
                    r'\((?P<waiting>\S+) including waiting\)')
GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def go_duration(text):
    """Seconds in a Go time.Duration string such as 1m2.5s or 850ms."""
    parts = GO_DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return round(sum(float(n) * GO_UNITS[u] for n, u in parts), 3)


@dataclass
class Measurement:
    pod: str
    namespace: str
    ready: bool = False
    seconds_to_ready: float = None
    server_restarts_at_ready: int = None
    restarts_at_ready: dict = None
    model_pull_seconds: float = None
    model_pull_including_waiting: float = None
    pulls: dict = field(default_factory=dict)      # image -> {seconds, including_waiting}
    statuses: list = field(default_factory=list)   # [t, kubectl-style STATUS, READY, RESTARTS]
    containers: dict = field(default_factory=dict)  # name -> [[t, state], ...]
    events: list = field(default_factory=list)     # [reason, count, message]
    registry: dict = field(default_factory=dict)   # the pacer's view of the model pull
    admitted: dict = field(default_factory=dict)   # the containers the admission chain stored
    # When a container of the model image was first seen started: the model is on the node.
    seconds_to_model_started: float = None
    # From then to Ready: what the pod costs beyond the pull.
    seconds_model_to_ready: float = None
    seconds_followed: float = None

    def as_json(self, **extra):
        return json.dumps({**extra, **asdict(self)}, sort_keys=False)

    def states_text(self):
        """What the pod went through, for a failure message."""
        lines = [f"pod {self.namespace}/{self.pod}: " + self.summary(),
                 f"  admitted as {json.dumps(self.admitted)}"]
        lines += [f"  {name}: " + ", ".join(f"{t}s {state}" for t, state in states)
                  for name, states in self.containers.items()]
        lines += [f"  event {reason} x{count}: {message}" for reason, count, message in
                  self.events if reason not in ("Scheduled",)]
        return "\n".join(lines)

    def summary(self):
        ready = f"Ready after {self.seconds_to_ready:.1f}s" if self.ready else "never Ready"
        if self.seconds_model_to_ready is not None:
            ready += f" ({self.seconds_model_to_ready:.1f}s after the model was on the node)"
        pull = (f"model pulled in {self.model_pull_seconds:.1f}s"
                if self.model_pull_seconds is not None else "no model pull reported")
        reasons = [s[1] for s in self.statuses]
        seen = " > ".join(r for i, r in enumerate(reasons) if i == 0 or r != reasons[i - 1])
        return (f"{ready}, server restarts at Ready {self.server_restarts_at_ready}, {pull}; "
                f"{seen}")


def status_text(pod):
    """The STATUS column of `kubectl get pod` (kubectl's printPod, abridged)."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    specs = {c["name"]: c for c in init_containers(pod)}
    initializing = False
    for i, c in enumerate(status.get("initContainerStatuses") or []):
        state = c.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if specs.get(c["name"], {}).get("restartPolicy") == "Always" and c.get("started"):
            continue  # a started native sidecar
        if term:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode')}")
        elif wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(specs)}"
        initializing = True
        break
    if not initializing:
        running = False
        for c in reversed(status.get("containerStatuses") or []):
            state = c.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated"):
                term = state["terminated"]
                reason = term.get("reason") or f"ExitCode:{term.get('exitCode')}"
            elif state.get("running") and c.get("ready"):
                running = True
        if reason == "Completed" and running:
            reason = "Running"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _container_state(c):
    state = c.get("state") or {}
    if "running" in state:
        return "running" + (" ready" if c.get("ready") else "")
    if "terminated" in state:
        t = state["terminated"]
        return f"terminated:{t.get('reason', '')}({t.get('exitCode')})"
    return "waiting:" + ((state.get("waiting") or {}).get("reason") or "")


def _statuses(pod):
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def is_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class Follower:
    """Records what changes between polls."""

    def __init__(self, m, started, model_image):
        self.m = m
        self.started = started
        self.model_image = model_image
        self.last_status = None
        self.last_state = {}

    def see(self, pod):
        t = round(time.monotonic() - self.started, 2)
        statuses = _statuses(pod)
        ready = sum(1 for c in (pod.get("status") or {}).get("containerStatuses") or []
                    if c.get("ready"))
        total = len(containers(pod))
        restarts = sum(c.get("restartCount", 0) for c in statuses)
        row = (status_text(pod), f"{ready}/{total}", restarts)
        if row != self.last_status:
            self.m.statuses.append([t, *row])
            self.last_status = row
        for c in statuses:
            started = "running" in (c.get("state") or {}) or "terminated" in (c.get("state") or {})
            if (self.m.seconds_to_model_started is None and started
                    and c.get("image", "").endswith(self.model_image.split("/", 1)[-1])):
                self.m.seconds_to_model_started = t
            state = (_container_state(c), c.get("restartCount", 0))
            if state != self.last_state.get(c["name"]):
                self.m.containers.setdefault(c["name"], []).append(
                    [t, state[0] + (f" restarts={state[1]}" if state[1] else "")])
                self.last_state[c["name"]] = state
        return t


def follow(node, pod, server_container, model_image, timeout, actions=(),
           around_create=(None, None)):
    """Creates `pod` and follows it until it is Ready or `timeout` seconds passed.
    `actions`: (seconds after the create, fn(node)) done while following it;
    `around_create`: fn(node) just before the create and just after it returned."""
    api = node.api
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    m = Measurement(name, ns)
    before, after = around_create
    if before:
        before(node)
    started = time.monotonic()
    created = api.must(api.post(f"/api/v1/namespaces/{ns}/pods", pod), f"create pod {name}")
    if after:
        after(node)
    pending = sorted(actions, key=lambda a: a[0])
    follower = Follower(m, started, model_image)
    path = f"/api/v1/namespaces/{ns}/pods/{name}"
    stored = created
    while True:
        r = api.get(path)
        if r.ok():
            stored = r.body
            t = follower.see(stored)
            if is_ready(stored):
                m.ready = True
                m.seconds_to_ready = t
                m.restarts_at_ready = {c["name"]: c.get("restartCount", 0)
                                       for c in _statuses(stored)}
                m.server_restarts_at_ready = m.restarts_at_ready.get(server_container)
                if m.seconds_to_model_started is not None:
                    m.seconds_model_to_ready = round(t - m.seconds_to_model_started, 2)
                break
        while pending and time.monotonic() - started >= pending[0][0]:
            pending.pop(0)[1](node)
        if time.monotonic() - started > timeout:
            break
        time.sleep(POLL_SECONDS)
    m.seconds_followed = round(time.monotonic() - started, 2)
    read_events(api, m, stored, model_image)
    m.stored = stored  # for the scenario's checks; not written with the results
    return m, stored


def admitted_shape(pod):
    """The containers as the admission chain stored them: names in order, with what the
    policy may have set (a native sidecar's restartPolicy, a postStart hook, a user)."""
    def shape(c):
        marks = []
        if c.get("restartPolicy") == "Always":
            marks.append("sidecar")
        if ((c.get("lifecycle") or {}).get("postStart")):
            marks.append("postStart")
        user = (c.get("securityContext") or {}).get("runAsUser")
        if user is not None:
            marks.append(f"uid {user}")
        return c["name"] + (f" ({', '.join(marks)})" if marks else "")
    return {"initContainers": [shape(c) for c in init_containers(pod)],
            "containers": [shape(c) for c in containers(pod)]}


def read_events(api, m, pod, model_image, wait=5):
    """The kubelet's events for the pod: pull durations as it reports them, and every
    reason with its count. The pull's event is sent before the container starts, but the
    recorder posts asynchronously: wait a little for it."""
    uid = pod["metadata"]["uid"]
    selector = urllib.parse.quote(f"involvedObject.uid={uid}")
    path = f"/api/v1/namespaces/{m.namespace}/events?fieldSelector={selector}"
    deadline = time.monotonic() + wait
    while True:
        items = api.must(api.get(path), "list events")["items"]
        m.pulls = {}
        for e in items:
            match = PULLED.search(e.get("message") or "")
            if match:
                m.pulls[match["image"]] = {"seconds": go_duration(match["pull"]),
                                           "including_waiting": go_duration(match["waiting"])}
        if model_image in m.pulls or not m.ready or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    items.sort(key=lambda e: e.get("firstTimestamp") or e.get("eventTime") or "")
    m.events = [[e.get("reason"), e.get("count", 1), (e.get("message") or "")[:300]]
                for e in items]
    if model_image in m.pulls:
        m.model_pull_seconds = m.pulls[model_image]["seconds"]
        m.model_pull_including_waiting = m.pulls[model_image]["including_waiting"]


def delete_and_wait(api, pod, timeout=60):
    """Deletes the pod at once (grace 0) and waits until the API no longer has it."""
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    path = f"/api/v1/namespaces/{ns}/pods/{name}"
    r = api.request("DELETE", path, {"apiVersion": "v1", "kind": "DeleteOptions",
                                     "gracePeriodSeconds": 0})
    if r.status not in (200, 202, 404):
        api.must(r, f"delete pod {name}")
    deadline = time.monotonic() + timeout
    while api.get(path).status != 404:
        if time.monotonic() > deadline:
            raise TimeoutError(f"pod {ns}/{name} still in the API after {timeout}s")
        time.sleep(0.2)
