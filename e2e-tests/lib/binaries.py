"""Where the programs the engine suites start are, and what to say when they are not there.

Release binaries are looked up the way their users keep them: an explicit path in an
environment variable, then PATH, then setup-envtest's KUBEBUILDER_ASSETS directory (which
holds kube-apiserver and etcd).

Kubewarden's engine (kwctl and policy-server of one release) may be given more than once:
KUBEWARDEN_ENGINES lists folders, separated by ':', that each hold a kwctl and a
policy-server, and the suites run once per folder. Without it the engine is the kwctl and
policy-server found like any other program.
"""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

# name on PATH -> environment variable that may hold its path
PROGRAMS = {
    "kube-apiserver": "KUBE_APISERVER",
    "kubelet": "KUBELET",
    "etcd": "ETCD",
    "policy-server": "POLICY_SERVER",
    "kwctl": "KWCTL",
    "docker-registry": "DOCKER_REGISTRY",
    "openssl": "OPENSSL",
    "containerd": "CONTAINERD",
    "runc": "RUNC",
    "ctr": "CTR",
    "crictl": "CRICTL",
    "skopeo": "SKOPEO",
    "umoci": "UMOCI",
    "busybox": "BUSYBOX",
}

# envtest ships these two; nothing else is looked for there.
ENVTEST_PROGRAMS = ("kube-apiserver", "etcd")
ENGINE_PROGRAMS = ("kwctl", "policy-server")

# Since 1.32 Kubewarden releases kwctl and policy-server from its monorepo: kwctl as binaries
# on its GitHub releases, policy-server as a container image only.
KUBEWARDEN_RELEASES = "https://github.com/kubewarden/kubewarden-controller/releases"
POLICY_SERVER_IMAGE = "ghcr.io/kubewarden/policy-server"

HOW_TO_GET_ENGINE = f"""\
  - kwctl: kwctl-linux-x86_64.zip of a release at {KUBEWARDEN_RELEASES}
    (1.32 and later; 1.31 and older: https://github.com/kubewarden/kwctl/releases), on PATH
    or KWCTL=/path
  - policy-server: Kubewarden ships it as the image {POLICY_SERVER_IMAGE}:vX.Y.Z; copy the
    binary /policy-server out of it, for example
      skopeo copy docker://{POLICY_SERVER_IMAGE}:v1.35.0 oci:ps:v1.35.0
      umoci raw unpack --rootless --image ps:v1.35.0 ps-rootfs && cp ps-rootfs/policy-server .
    (or build crates/policy-server of github.com/kubewarden/kubewarden-controller), on PATH or
    POLICY_SERVER=/path
  - both of several releases: KUBEWARDEN_ENGINES=/dir/1.31:/dir/1.35, each folder holding a
    kwctl and a policy-server (the suites run once per folder)"""

HOW_TO_GET_CONTROL_PLANE = """\
  - kube-apiserver and etcd: controller-runtime's setup-envtest
      go install sigs.k8s.io/controller-runtime/tools/setup-envtest@latest
      export KUBEBUILDER_ASSETS="$(setup-envtest use -p path 1.33.x)"
    (or Debian's etcd-server package for etcd; KUBE_APISERVER=/path and ETCD=/path also work)"""

HOW_TO_GET_KUBELET = """\
  - kubelet: from Kubernetes' release binaries https://kubernetes.io/releases/download/
    (dl.k8s.io), on PATH or KUBELET=/path"""

HOW_TO_GET_CRICTL = """\
  - crictl: from cri-tools' releases https://github.com/kubernetes-sigs/cri-tools/releases,
    on PATH or CRICTL=/path"""

HOW_TO_TRY_ON_A_CLUSTER = """\
Or try the policy on a real cluster (kind or k3d) with Kubewarden's Helm charts:
  https://docs.kubewarden.io/quick-start"""


@dataclass
class Engine:
    """kwctl and policy-server of one Kubewarden release."""
    kwctl: str
    policy_server: str

    @property
    def version(self):
        return program_version(self.policy_server) or "unknown"

    @property
    def kwctl_version(self):
        return program_version(self.kwctl) or "unknown"

    @property
    def label(self):
        return f"Kubewarden {self.version}"

    def path_first(self, path=None):
        """PATH with this engine's folders first, for programs that look kwctl up."""
        dirs = []
        for program in (self.kwctl, self.policy_server):
            d = os.path.dirname(program)
            if d not in dirs:
                dirs.append(d)
        return os.pathsep.join(dirs + [path if path is not None else os.environ.get("PATH", "")])


@dataclass
class Binaries:
    paths: dict
    engines: list

    def __getitem__(self, name):
        return self.paths[name]

    def get(self, name):
        return self.paths.get(name)

    def missing(self, names):
        def found(n):
            return self.paths.get(n) or (n in ENGINE_PROGRAMS and self.engines)
        return [n for n in names if not found(n)]


def program_version(path):
    """`X.Y.Z` from `<program> --version` (kwctl, policy-server, kubelet print it so)."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"\bv?(\d+\.\d+\.\d+\S*)", out.stdout + out.stderr)
    return m.group(1) if m else None


def _executable(path):
    return path if path and os.path.isfile(path) and os.access(path, os.X_OK) else None


def _find(name, env_var):
    explicit = os.environ.get(env_var)
    if explicit:
        return _executable(explicit)
    found = shutil.which(name)
    if found:
        return found
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and name in ENVTEST_PROGRAMS:
        return _executable(os.path.join(assets, name))
    return None


def engines(paths):
    """The engines to run against, in the order given."""
    listed = [d for d in os.environ.get("KUBEWARDEN_ENGINES", "").split(os.pathsep) if d]
    if listed:
        found = []
        for d in listed:
            kwctl = _executable(os.path.join(d, "kwctl"))
            policy_server = _executable(os.path.join(d, "policy-server"))
            if not kwctl or not policy_server:
                raise SystemExit(f"KUBEWARDEN_ENGINES names {d}, which lacks an executable "
                                 "kwctl or policy-server")
            found.append(Engine(kwctl, policy_server))
        return found
    if paths.get("kwctl") and paths.get("policy-server"):
        return [Engine(paths["kwctl"], paths["policy-server"])]
    return []


def locate():
    paths = {name: _find(name, env) for name, env in PROGRAMS.items()}
    return Binaries(paths, engines(paths))
