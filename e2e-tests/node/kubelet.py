"""The kubelet of the test node, and what it changes on the machine.

It runs as root on the host's cgroups and kernel: it sets six machine-wide sysctls (saved
here before it starts and restored afterwards), and its pods' cgroups (`kubepods`, cgroupfs
driver) outlive it. Everything else it writes is configured into the work directory; the
two host paths it cannot be told about are covered by mounts.py.
"""

import json
import os
import signal
import subprocess
import time
import urllib.request

from processes import Failed, free_port

# What the kubelet sets at start (unless protectKernelDefaults, which makes it refuse to
# start instead). kernel.panic_on_oops=1 turns any oops into a reboot: restore it.
SYSCTLS = ("vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
           "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes")
CGROUP_FS = "/sys/fs/cgroup"
PODS_CGROUP = "kubepods"


def _sysctl_path(name):
    return "/proc/sys/" + name.replace(".", "/")


def read_sysctls():
    values = {}
    for name in SYSCTLS:
        with open(_sysctl_path(name)) as f:
            values[name] = f.read().strip()
    return values


def restore_sysctls(saved):
    """Writes back each saved value that differs now; returns {name: (now, restored)}."""
    changed = {}
    for name, value in saved.items():
        with open(_sysctl_path(name)) as f:
            now = f.read().strip()
        if now != value:
            with open(_sysctl_path(name), "w") as f:
                f.write(value)
            changed[name] = (now, value)
    return changed


def pod_cgroup_trees():
    """The kubelet's `kubepods` cgroup in every hierarchy it is in (cgroup v1: one per
    controller; v2: one)."""
    if os.path.exists(os.path.join(CGROUP_FS, "cgroup.controllers")):
        candidates = [os.path.join(CGROUP_FS, PODS_CGROUP)]
    else:
        candidates = [os.path.join(CGROUP_FS, d, PODS_CGROUP)
                      for d in sorted(os.listdir(CGROUP_FS))]
    return [c for c in candidates if os.path.isdir(c) and not os.path.islink(os.path.dirname(c))]


def pod_cgroup_processes():
    pids = set()
    for tree in pod_cgroup_trees():
        for dirpath, _, filenames in os.walk(tree):
            if "cgroup.procs" in filenames:
                try:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        pids.update(int(p) for p in f.read().split())
                except OSError:
                    pass
    return sorted(pids)


def remove_pod_cgroups(timeout=15):
    """Kills what still runs in the pods' cgroups (containers whose shim was killed) and
    removes the cgroups, deepest first. Returns (pids killed, cgroups left)."""
    killed = pod_cgroup_processes()
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while True:
        for tree in pod_cgroup_trees():
            for dirpath, _, _ in os.walk(tree, topdown=False):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass  # busy until its processes are gone: next round
        left = pod_cgroup_trees()
        if not left or time.monotonic() > deadline:
            return killed, left
        time.sleep(0.2)


class Kubelet:
    def __init__(self, procs, binary, workdir, kubeconfig, runtime_socket, node_name, node_ip,
                 verbosity=2):
        self.procs = procs
        self.binary = binary
        self.dir = os.path.join(workdir, "kubelet")
        self.root_dir = os.path.join(self.dir, "root")
        self.config_file = os.path.join(self.dir, "config.json")
        self.kubeconfig = kubeconfig
        self.runtime_socket = runtime_socket
        self.node_name = node_name
        self.node_ip = node_ip
        self.verbosity = verbosity
        self.port, self.healthz_port = free_port(), free_port()
        self.proc = None
        self.starts = 0

    def config(self):
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # 1.35+ refuses cgroup v1 unless told; these machines have v1.
            "failCgroupV1": False,
            # containerd 1.6 lacks the RuntimeConfig RPC the kubelet would ask the driver of.
            "cgroupDriver": "cgroupfs",
            # Root here cannot lower its own oom_score_adj (no CAP_SYS_RESOURCE).
            "oomScoreAdj": 0,
            "failSwapOn": False,
            "address": "127.0.0.1",
            "port": self.port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.healthz_port,
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": f"unix://{self.runtime_socket}",
            # Defaults under /usr/libexec and /var/log.
            "volumePluginDir": os.path.join(self.dir, "volume-plugins"),
            "podLogsDir": os.path.join(self.dir, "pod-logs"),
            # A shared build machine's disk and memory must not evict the test's pods or
            # collect the images the runs rely on.
            "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%",
                             "nodefs.inodesFree": "1%", "imagefs.available": "1%",
                             "imagefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            # The default, stated: one pull at a time is what makes the modelcar race.
            "serializeImagePulls": True,
            "registerNode": True,
        }

    def write_config(self):
        os.makedirs(self.root_dir, exist_ok=True)
        with open(self.config_file, "w") as f:
            json.dump(self.config(), f, indent=1)

    def argv(self):
        return [self.binary, f"--config={self.config_file}", f"--kubeconfig={self.kubeconfig}",
                f"--root-dir={self.root_dir}", f"--cert-dir={os.path.join(self.dir, 'pki')}",
                f"--hostname-override={self.node_name}",
                # It refuses a loopback node IP: a TEST-NET address on lo (private netns).
                f"--node-ip={self.node_ip}", f"--v={self.verbosity}"]

    def healthy(self):
        url = f"http://127.0.0.1:{self.healthz_port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200

    def start(self, timeout=60):
        """Starts it (again, with the same configuration) and waits for its healthz."""
        self.write_config()
        self.starts += 1
        name = "kubelet" if self.starts == 1 else f"kubelet-{self.starts}"
        self.proc = self.procs.start(name, self.argv())
        self.procs.wait_ready(name, self.proc, self.healthy, timeout)

    def stop(self, timeout=30):
        """SIGTERM by PID: the kubelet exits and leaves its pods running, as a restart does."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self, timeout=60):
        self.stop()
        self.start(timeout)

    def running(self):
        return self.proc is not None and self.proc.poll() is None


def expect_no_pod_cgroups():
    """Another kubelet's pods, or a run that was killed: refuse to mix with them. Empty
    leftovers are removed."""
    if not pod_cgroup_trees():
        return
    if pod_cgroup_processes():
        raise Failed(f"processes run in {PODS_CGROUP} cgroups ({', '.join(pod_cgroup_trees())}):"
                     " another kubelet runs on this machine; the node suite needs it alone")
    _, left = remove_pod_cgroups(timeout=5)
    if left:
        raise Failed(f"cannot remove the leftover cgroups {', '.join(left)}")
