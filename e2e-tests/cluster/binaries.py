"""Where the control-plane programs are, and what to say when they are not there.

Release binaries are looked up the way their users keep them: an explicit path in an
environment variable, then PATH, then setup-envtest's KUBEBUILDER_ASSETS directory (which
holds kube-apiserver and etcd).
"""

import os
import shutil
from dataclasses import dataclass

# name on PATH -> environment variable that may hold its path
PROGRAMS = {
    "kube-apiserver": "KUBE_APISERVER",
    "etcd": "ETCD",
    "policy-server": "POLICY_SERVER",
    "kwctl": "KWCTL",
    "docker-registry": "DOCKER_REGISTRY",
    "openssl": "OPENSSL",
}

# envtest ships these two; nothing else is looked for there.
ENVTEST_PROGRAMS = ("kube-apiserver", "etcd")

HOW_TO_GET = """\
The control-plane suite needs kube-apiserver, etcd, policy-server and kwctl:
  - kube-apiserver and etcd: controller-runtime's setup-envtest
      go install sigs.k8s.io/controller-runtime/tools/setup-envtest@latest
      export KUBEBUILDER_ASSETS="$(setup-envtest use -p path 1.33.x)"
    (or Debian's etcd-server package for etcd; KUBE_APISERVER=/path and ETCD=/path also work)
  - policy-server: a release binary from https://github.com/kubewarden/policy-server/releases
    on PATH, or POLICY_SERVER=/path
  - kwctl: a release binary from https://github.com/kubewarden/kwctl/releases
  - docker-registry (Debian package docker-registry) for the OCI-registry case
Or try the policy on a real cluster (kind or k3d) with Kubewarden's Helm charts:
  https://docs.kubewarden.io/quick-start"""


@dataclass
class Binaries:
    paths: dict

    def __getitem__(self, name):
        return self.paths[name]

    def missing(self, names):
        return [n for n in names if not self.paths.get(n)]


def _find(name, env_var):
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and name in ENVTEST_PROGRAMS:
        candidate = os.path.join(assets, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def locate():
    return Binaries({name: _find(name, env) for name, env in PROGRAMS.items()})
