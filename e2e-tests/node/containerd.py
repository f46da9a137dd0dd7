"""containerd for the test node, started by hand with its own configuration and folders, and
the image bookkeeping the node suite depends on: a model image must really be gone from the
node before each run, or the next "pull" downloads nothing.

Every path is under the run's work directory but one: containerd 1.6 puts its shims' sockets
under /run/containerd/s (fixed in the code), which node.py covers with a tmpfs in the private
mount namespace.
"""

import json
import os
import signal
import subprocess
import time

from processes import Failed, child_env

K8S_NAMESPACE = "k8s.io"  # the CRI's containerd namespace
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")

CONFIG = """\
version = 2
root = "{dir}/root"
state = "{dir}/state"
# Snapshotters this machine cannot run only fill the log with errors.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"

# Its default is /opt/containerd.
[plugins."io.containerd.internal.v1.opt"]
  path = "{dir}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # No other registry is reachable.
  sandbox_image = "{sandbox_image}"
  # Root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj to the kubelet's -997
  # and every sandbox would fail ("can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # There is no systemd; the kubelet uses cgroupfs too.
        SystemdCgroup = false
        BinaryName = "{runc}"
        # runc's state, instead of /run/containerd/runc.
        Root = "{dir}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    # Only a loopback network: the CRI reports NetworkReady=true (else the node stays
    # NotReady); pods use hostNetwork, so no plugin is ever called.
    bin_dir = "{cni_bin}"
    conf_dir = "{dir}/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    # hosts.toml per registry: the pacer speaks plain HTTP.
    config_path = "{dir}/certs.d"
"""

HOSTS_TOML = """\
server = "http://{host}"

[host."http://{host}"]
  capabilities = ["pull", "resolve"]
"""

LOOPBACK_CONFLIST = {"cniVersion": "0.4.0", "name": "e2e-loopback",
                     "plugins": [{"type": "loopback"}]}


def cni_bin_dir():
    """A folder holding the `loopback` CNI plugin (Debian's containernetworking-plugins puts
    it in /usr/lib/cni), or None."""
    for d in CNI_BIN_DIRS:
        if os.access(os.path.join(d, "loopback"), os.X_OK):
            return d
    return None


class Containerd:
    def __init__(self, procs, bins, workdir, registry_host, sandbox_image):
        self.procs = procs
        self.bins = bins
        self.dir = os.path.join(workdir, "containerd")
        self.socket = os.path.join(self.dir, "containerd.sock")
        self.registry_host = registry_host
        self.sandbox_image = sandbox_image
        self.hosts_dir = os.path.join(self.dir, "certs.d")
        self.crictl_config = os.path.join(self.dir, "crictl.yaml")
        self.proc = None

    def write_config(self):
        cni_bin = cni_bin_dir()
        if not cni_bin:
            raise Failed("no loopback CNI plugin in " + " or ".join(CNI_BIN_DIRS) +
                         ": install Debian's containernetworking-plugins")
        for d in ("cni", os.path.join("certs.d", self.registry_host)):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        config = os.path.join(self.dir, "config.toml")
        with open(config, "w") as f:
            f.write(CONFIG.format(dir=self.dir, socket=self.socket, runc=self.bins["runc"],
                                  sandbox_image=self.sandbox_image, cni_bin=cni_bin))
        with open(os.path.join(self.hosts_dir, self.registry_host, "hosts.toml"), "w") as f:
            f.write(HOSTS_TOML.format(host=self.registry_host))
        with open(os.path.join(self.dir, "cni", "10-loopback.conflist"), "w") as f:
            json.dump(LOOPBACK_CONFLIST, f)
        with open(self.crictl_config, "w") as f:
            f.write(f"runtime-endpoint: unix://{self.socket}\n"
                    f"image-endpoint: unix://{self.socket}\ntimeout: 60\n")
        return config

    def start(self, timeout=60):
        config = self.write_config()
        self.proc = self.procs.start("containerd", [self.bins["containerd"], "--config", config])
        self.procs.wait_ready("containerd", self.proc, self._ready, timeout)

    def _ready(self):
        if not os.path.exists(self.socket):
            return False
        if self.bins.get("crictl"):
            info = self.crictl_json("info")
            conditions = {c["type"]: c["status"] for c in info["status"]["conditions"]}
            return conditions.get("RuntimeReady") and conditions.get("NetworkReady")
        return self.ctr("version", check=False).returncode == 0

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # --- clients

    def ctr(self, *args, check=True, timeout=120):
        result = subprocess.run([self.bins["ctr"], "--address", self.socket, "-n", K8S_NAMESPACE,
                                 *args], capture_output=True, text=True, timeout=timeout,
                                env=child_env())
        if check and result.returncode != 0:
            raise Failed(f"ctr {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def crictl(self, *args, check=True, timeout=120):
        result = subprocess.run([self.bins["crictl"], "--config", self.crictl_config, *args],
                                capture_output=True, text=True, timeout=timeout,
                                env=child_env())
        if check and result.returncode != 0:
            raise Failed(f"crictl {' '.join(args)} failed ({result.returncode}): "
                         f"{result.stderr}")
        return result

    def crictl_json(self, *args):
        return json.loads(self.crictl(*args, "-o", "json").stdout or "{}")

    def pull(self, reference):
        """Pulls an image onto the node as the kubelet would (through the CRI when crictl
        is here); returns the seconds taken."""
        t = time.monotonic()
        if self.bins.get("crictl"):
            self.crictl("pull", reference, timeout=600)
        else:
            self.ctr("images", "pull", "--hosts-dir", self.hosts_dir, reference, timeout=600)
        return time.monotonic() - t

    def _running_of_pod(self, uid):
        if self.bins.get("crictl"):
            return self.crictl("pods", "--label", f"io.kubernetes.pod.uid={uid}",
                               "--state", "ready", "-q").stdout.split()
        # Without crictl: the CRI labels containerd's containers, and a task runs each.
        ids = set(self.ctr("containers", "ls", "-q",
                           f'labels."io.kubernetes.pod.uid"=={uid}').stdout.split())
        return [line.split()[0] for line in self.ctr("tasks", "ls").stdout.splitlines()[1:]
                if line.split() and line.split()[0] in ids and "RUNNING" in line]

    def wait_pod_stopped(self, uid, timeout=60):
        """Waits until the kubelet has stopped a deleted pod's sandbox (so every container
        of it); returns the seconds taken. A container of it still running would keep the
        model's snapshot."""
        t = time.monotonic()
        while True:
            if not self._running_of_pod(uid):
                return time.monotonic() - t
            if time.monotonic() - t > timeout:
                raise Failed(f"pod {uid} still running on the node after {timeout}s")
            time.sleep(0.25)

    # --- what the node holds of an image

    def image_records(self, manifest_digest):
        """Names of containerd's image records that point at this manifest: the CRI keeps
        the tag, the repo digest and the image ID (sha256:<config>) as separate records."""
        names = []
        for line in self.ctr("images", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3 and fields[2] == manifest_digest:
                names.append(fields[0])
        return names

    def _listed(self, *args):
        return {line.split()[0] for line in self.ctr(*args).stdout.splitlines()[1:] if line}

    def leftovers(self, identity):
        """What the node still holds of a model image: anything here makes the next pull
        download less than the whole model. The busybox layer is shared with the server
        image, which stays, so only the model's own blobs and snapshot count."""
        found = [f"image {n}" for n in self.image_records(identity.manifest)]
        content = self._listed("content", "ls")
        own = (identity.manifest, identity.config, identity.layers[-1])
        found += [f"content {d}" for d in own if d in content]
        active = self.ctr("content", "active").stdout
        found += [f"partial download of {d}" for d in own if d.split(":")[1] in active]
        snapshots = self._listed("snapshots", "--snapshotter", "overlayfs", "ls")
        if identity.chain_ids[-1] in snapshots:
            found.append(f"snapshot {identity.chain_ids[-1]}")
        return found

    def containers_using(self, identity):
        if not self.bins.get("crictl"):
            return []
        listed = self.crictl_json("ps", "-a").get("containers") or []
        return [c["id"] for c in listed
                if c.get("imageRef") in (identity.config, identity.manifest)
                or identity.config in (c.get("image", {}).get("image") or "")]

    def remove_image(self, identity, timeout=30):
        """Removes the model image for real: containers still using it (their snapshots hold
        its layers), its CRI record, every containerd record, with a synchronous garbage
        collection so its blobs and snapshots go too. Fails listing what is left."""
        for cid in self.containers_using(identity):
            self.crictl("rm", "-f", cid, check=False)
        if self.bins.get("crictl"):
            self.crictl("rmi", identity.config, check=False)
        deadline = time.monotonic() + timeout
        while True:
            names = self.image_records(identity.manifest)
            if names:
                self.ctr("images", "rm", "--sync", *names, check=False)
            else:
                self.collect_garbage()
            left = self.leftovers(identity)
            if not left:
                return
            if time.monotonic() > deadline:
                raise Failed("the model image is still on the node: " + ", ".join(left))
            time.sleep(0.5)

    def collect_garbage(self):
        """A synchronous garbage collection, for what no image record holds any more (the
        blobs of a failed pull): containerd runs one when a lease is deleted with --sync."""
        lease = f"modelcar-prefetch-e2e-gc-{time.monotonic_ns()}"
        self.ctr("leases", "create", "--id", lease, check=False)
        self.ctr("leases", "rm", "--sync", lease, check=False)

    def expect_gone(self, identity):
        left = self.leftovers(identity)
        if left:
            raise Failed("the model image is on the node before the run (the pull would "
                         "download less than the model): " + ", ".join(left))

    # --- teardown

    def remove_all_pods(self):
        """Stops and removes every pod sandbox and its containers through the CRI, so that
        the shims exit on their own."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        if self.bins.get("crictl"):
            ids = self.crictl("pods", "-q", check=False).stdout.split()
            if ids:
                self.crictl("rmp", "--all", "--force", check=False, timeout=120)
            return f"{len(ids)} pod(s)" if ids else None
        # Without crictl: kill the tasks and drop the containers behind the CRI's back.
        tasks = [line.split()[0] for line in self.ctr("tasks", "ls").stdout.splitlines()[1:]
                 if line.split()]
        for task in tasks:
            self.ctr("tasks", "kill", "-s", "SIGKILL", task, check=False)
            self.ctr("tasks", "rm", "-f", task, check=False)
        ids = self.ctr("containers", "ls", "-q").stdout.split()
        if ids:
            self.ctr("containers", "rm", *ids, check=False)
        return f"{len(tasks)} task(s), {len(ids)} container(s)" if tasks or ids else None

    def shims(self):
        """PIDs of the containerd-shim-runc-v2 processes of this containerd: they outlive
        containerd by design; their command line names its socket."""
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0]).startswith(b"containerd-shim") and \
                    self.socket.encode() in argv:
                pids.append(int(pid))
        return pids

    def kill_shims(self):
        pids = self.shims()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids
