"""A real node on this machine: the control plane of lib/ (etcd, kube-apiserver,
policy-server, the KServe stand-in), a registry with the node's images behind the pacer,
containerd and a kubelet registered as one Node; and its teardown, which leaves nothing on
the machine.

It must run in the private network and mount namespace of
harness.reexec_in_private_netns(..., mount=True): the node IP goes on that namespace's
loopback, and the tmpfs mounts over host paths stay in it.
"""

import json
import os
import subprocess
import sys
import time
import traceback
import urllib.request
from dataclasses import dataclass, field

import binaries
import controlplane
import harness
import images
import kubelet as kubelet_mod
import mounts
import registry
from containerd import Containerd
from kubelet import Kubelet
from processes import Failed, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_NAME = "modelcar-e2e-node"
# The kubelet refuses a loopback node IP; TEST-NET-1 (RFC 5737) reaches nothing anyway.
NODE_IP = "192.0.2.10"
REPO = "e2e"
MODEL_REPOSITORY = f"{REPO}/models-iris"
DEFAULT_RATE_MIB = 8.0  # 200 MiB in 25 s: the pull takes at least 20 s


@dataclass
class Settings:
    model_mib: int = images.DEFAULT_MODEL_MIB
    rate_mib: float = DEFAULT_RATE_MIB
    kubelet_verbosity: int = 2


class Pacer:
    """The client side of pacer.py's control endpoints."""

    def __init__(self, port):
        self.port = port
        self.host = f"127.0.0.1:{port}"

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://{self.host}/_pacer/{path}", data=data,
                                     method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    def healthy(self):
        return self._call("GET", "healthz")["ok"]

    def configure(self, **changes):
        return self._call("POST", "config", changes)

    def reset(self):
        self._call("POST", "reset", {})

    def transfers(self, digest=None):
        found = self._call("GET", "stats")["transfers"]
        return [t for t in found if digest is None or t["digest"] == digest]


def start_pacer(procs, registry_port, rate_mib):
    port = free_port()
    proc = procs.start("pacer", [sys.executable, os.path.join(HERE, "pacer.py"),
                                 "--port", str(port), "--upstream", f"127.0.0.1:{registry_port}",
                                 "--rate-mib", str(rate_mib)])
    pacer = Pacer(port)
    procs.wait_ready("pacer", proc, pacer.healthy, 15)
    return pacer


@dataclass
class Node(harness.OnControlPlane):
    """What the scenarios get."""
    plane: harness.ControlPlane
    containerd: Containerd
    kubelet: Kubelet
    pacer: Pacer
    registry_port: int
    built: images.Built
    images: dict  # role (pause, server, slow-server) -> reference the node pulls
    model: images.ImageIdentity
    workdir: str
    settings: Settings
    host: "Host" = None
    pushed: list = field(default_factory=list)
    results: list = field(default_factory=list)  # files the JSON lines are appended to
    facts: dict = field(default_factory=dict)  # written with every result: what ran, where

    def model_reference(self, tag):
        """The model image under a tag of its own, so each run names an image the node has
        never pulled (the content is the same: the image is also removed between runs)."""
        registry.retag(self.registry_port, MODEL_REPOSITORY, "base", tag)
        self.pushed.append(tag)
        return f"{self.pacer.host}/{MODEL_REPOSITORY}:{tag}"

    def node_object(self):
        return self.api.must(self.api.get(f"/api/v1/nodes/{NODE_NAME}"), "node")

    def restart_kubelet(self, timeout=60):
        """Stops the kubelet and starts it again with the same configuration (its pods keep
        running, as in a kubelet upgrade); waits until it has reported the node again. No
        controller marks the Node NotReady meanwhile, so "Ready" alone proves nothing."""
        def heartbeat():
            for c in self.node_object().get("status", {}).get("conditions") or []:
                if c["type"] == "Ready":
                    return c.get("lastHeartbeatTime"), c["status"]
            return None, None
        before, _ = heartbeat()
        t = time.monotonic()
        self.kubelet.restart()
        harness.wait_until("the restarted kubelet reporting its node Ready",
                           lambda: heartbeat()[0] != before and heartbeat()[1] == "True",
                           timeout, interval=0.25)
        return time.monotonic() - t


class Host:
    """What the node changes on the machine, undone in reverse order by teardown(): safe to
    call more than once, and after a start that failed half-way."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.paths = mounts.HostPaths()
        self.sysctls = None
        self.containerd = None
        self.kubelet = None
        self.node_ip_added = False
        self.done = False

    def add_node_ip(self):
        subprocess.run(["ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo"], check=True,
                       capture_output=True)
        self.node_ip_added = True

    def teardown(self):
        if self.done:
            return
        self.done = True
        problems = []

        def step(what, fn):
            try:
                result = fn()
                if result:
                    print(f"# teardown: {what}: {result}", flush=True)
            except Exception:
                problems.append(f"{what}:\n{traceback.format_exc()}")

        if self.kubelet:
            step("kubelet stopped", self.kubelet.stop)
        if self.containerd:
            step("pods removed", self.containerd.remove_all_pods)
            step("containerd stopped", self.containerd.stop)
            step("shims killed", self.containerd.kill_shims)

        def cgroups():
            killed, left = kubelet_mod.remove_pod_cgroups()
            if left:
                raise Failed(f"cgroups left: {left}")
            return f"killed {killed}" if killed else None
        step("pod cgroups removed", cgroups)
        step("unmounted", lambda: None if not mounts.unmount_under(self.workdir) else
             "mounts under the work dir")
        step("host paths uncovered", self.paths.uncover)
        if self.sysctls is not None:
            def sysctls():
                changed = kubelet_mod.restore_sysctls(self.sysctls)
                return ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
            step("sysctls restored", sysctls)
        if self.node_ip_added:
            def node_ip():
                subprocess.run(["ip", "addr", "del", f"{NODE_IP}/32", "dev", "lo"],
                               capture_output=True)
            step("node IP removed", node_ip)
        for p in problems:
            print(f"# teardown problem: {p}", flush=True)


def wait_node_ready(api, timeout=90):
    def ready():
        r = api.get(f"/api/v1/nodes/{NODE_NAME}")
        if not r.ok():
            return False
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in r.body.get("status", {}).get("conditions") or [])
    harness.wait_until(f"node {NODE_NAME} Ready", ready, timeout, interval=0.25)


def bring_up(bins, engine, procs, workdir, module, policies, namespaces, settings, host):
    """Starts everything in order, noting in `host` (a Host) what it changes on the
    machine. host.teardown() must run before procs.stop_all(), pass or fail."""
    if not harness.in_private_netns():
        raise Failed("the node suite must run in a private network and mount namespace "
                     "(unshare --net --mount): it changes the loopback and mounts tmpfs "
                     "over host folders")
    t0 = time.monotonic()
    # The registry, the pacer and the API are on loopback: never through a proxy.
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.ProxyHandler({})))
    kubelet_mod.expect_no_pod_cgroups()
    host.add_node_ip()
    host.paths.cover()

    t = time.monotonic()
    built = images.build(bins["umoci"], bins["busybox"], settings.model_mib << 20)
    print(f"# images ready in {time.monotonic() - t:.1f}s ({built.layout})", flush=True)
    registry_port = registry.start_registry(procs, bins["docker-registry"], workdir)
    refs = {"pause": f"{REPO}/pause:1", "server": f"{REPO}/model-server:1",
            "slow-server": f"{REPO}/model-server-slow:1", "model": f"{MODEL_REPOSITORY}:base"}
    for tag, ref in refs.items():
        images.push(bins["skopeo"], built, tag, registry_port, ref)
    pacer = start_pacer(procs, registry_port, settings.rate_mib)
    node_images = {role: f"{pacer.host}/{ref}" for role, ref in refs.items() if role != "model"}

    etcd_dir = controlplane.etcd_data_dir(workdir)
    procs.cleanup.append(lambda: controlplane.remove_tree(etcd_dir))
    plane = harness.start_control_plane(bins, engine, procs, workdir, etcd_dir, policies,
                                        namespaces, module)

    cd = Containerd(procs, bins, workdir, pacer.host, node_images["pause"])
    host.containerd = cd
    cd.start()
    # The node has its sandbox and server images, as a node that ran such pods before:
    # only the model is pulled during a run. Unpaced, to start quickly.
    pacer.configure(rate=0)
    for role in ("pause", "server", "slow-server"):
        cd.pull(node_images[role])
    pacer.configure(rate=settings.rate_mib * (1 << 20))
    pacer.reset()

    host.sysctls = kubelet_mod.read_sysctls()
    kl = Kubelet(procs, bins["kubelet"], workdir, plane.kubeconfig, cd.socket, NODE_NAME,
                 NODE_IP, settings.kubelet_verbosity)
    host.kubelet = kl
    t = time.monotonic()
    kl.start()
    wait_node_ready(plane.api)
    print(f"# node {NODE_NAME} Ready {time.monotonic() - t:.1f}s after the kubelet started; "
          f"all up in {time.monotonic() - t0:.1f}s (work dir {workdir})", flush=True)
    node = Node(plane, cd, kl, pacer, registry_port, built, node_images,
                built.identity("model"), workdir, settings, host)
    node.facts = {"engine": engine.label, "kubelet": binaries.program_version(bins["kubelet"]),
                  "containerd": binaries.program_version(bins["containerd"]),
                  "model_mib": settings.model_mib, "rate_mib": settings.rate_mib,
                  "machine": machine(), "date": time.strftime("%Y-%m-%d")}
    return node


def machine():
    """`N cores, <CPU model>, cgroup vX`: what the timings depend on."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cgroup = "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"
    return f"{os.cpu_count()} cores, {model}, cgroup {cgroup}"
