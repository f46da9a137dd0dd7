"""etcd, kube-apiserver and policy-server on 127.0.0.1, started and waited for."""

import json
import os
import secrets
import shutil
import signal
import ssl
import tempfile
import time
import urllib.request
from dataclasses import dataclass

from processes import free_port

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # Metadata carries the admission annotations: which webhook mutated
  # (mutation.webhook.admission.k8s.io/round_R_index_I) and what webhooks said
  # (<webhook name>/<key>).
  - level: Metadata
    resources: [{group: "", resources: [pods]}]
    verbs: [create]
  - level: None
"""


@dataclass
class ApiServer:
    port: int
    token: str
    audit_log: str
    kubeconfig: str


def _http_ok(url, context=None, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=2, context=context) as resp:
        return resp.status == 200


def _no_proxy_opener():
    # urllib would send loopback requests to a configured proxy.
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.ProxyHandler({})))


def etcd_data_dir(workdir):
    """On tmpfs when there is one: etcd fsyncs every write."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return tempfile.mkdtemp(prefix="modelcar-prefetch-e2e-etcd-", dir=shm)
    path = os.path.join(workdir, "etcd-data")
    os.makedirs(path)
    return path


def start_etcd(procs, etcd, data_dir):
    _no_proxy_opener()
    port, peer = free_port(), free_port()
    proc = procs.start("etcd", [
        etcd, "--name", "e2e", "--data-dir", data_dir,
        "--listen-client-urls", f"http://127.0.0.1:{port}",
        "--advertise-client-urls", f"http://127.0.0.1:{port}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"e2e=http://127.0.0.1:{peer}",
    ])
    procs.wait_ready("etcd", proc, lambda: _http_ok(f"http://127.0.0.1:{port}/health"), 30)
    return port


def start_apiserver(procs, kube_apiserver, certs, workdir, etcd_port):
    port = free_port()
    token = secrets.token_hex(16)
    tokens = os.path.join(workdir, "tokens.csv")
    with open(tokens, "w") as f:
        f.write(f"{token},e2e-admin,e2e-admin,system:masters\n")
    audit_policy = os.path.join(workdir, "audit-policy.yaml")
    with open(audit_policy, "w") as f:
        f.write(AUDIT_POLICY)
    audit_log = os.path.join(workdir, "logs", "audit.log")
    cert_dir = os.path.join(workdir, "apiserver-certs")
    os.makedirs(cert_dir)
    proc = procs.start("kube-apiserver", [
        kube_apiserver,
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={certs.serving_cert}", f"--tls-private-key-file={certs.serving_key}",
        f"--service-account-key-file={certs.sa_pub}",
        f"--service-account-signing-key-file={certs.sa_key}",
        f"--service-account-issuer=https://127.0.0.1:{port}",
        "--service-cluster-ip-range=10.96.0.0/24",
        f"--token-auth-file={tokens}", "--authorization-mode=AlwaysAllow",
        # No controller-manager creates the `default` ServiceAccount the plugin would demand.
        "--disable-admission-plugins=ServiceAccount",
        "--endpoint-reconciler-type=none",
        f"--audit-policy-file={audit_policy}", f"--audit-log-path={audit_log}",
    ])
    context = ssl.create_default_context(cafile=certs.ca_cert)
    procs.wait_ready("kube-apiserver", proc, lambda: _http_ok(
        f"https://127.0.0.1:{port}/readyz", context, {"Authorization": f"Bearer {token}"}), 90)
    kubeconfig = os.path.join(workdir, "kubeconfig")
    with open(kubeconfig, "w") as f:
        json.dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
            "clusters": [{"name": "e2e", "cluster": {
                "server": f"https://127.0.0.1:{port}", "certificate-authority": certs.ca_cert}}],
            "users": [{"name": "e2e", "user": {"token": token}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}],
        }, f)
    return ApiServer(port, token, audit_log, kubeconfig)


class PolicyServer:
    """policy-server on fixed ports, which can be killed, frozen and started again as a
    Deployment's replica would be: the webhooks keep pointing at the same address."""

    def __init__(self, procs, binary, certs, workdir, policies_file, sources_file, kubeconfig,
                 extra_args=()):
        self.procs = procs
        self.port, self.readiness = free_port(), free_port()
        self.downloads = os.path.join(workdir, "policies-download")
        os.makedirs(self.downloads, exist_ok=True)
        self.argv = [
            binary, "--addr", "127.0.0.1", "--port", str(self.port),
            "--readiness-probe-port", str(self.readiness),
            "--cert-file", certs.serving_cert, "--key-file", certs.serving_key,
            "--policies", policies_file, "--policies-download-dir", self.downloads,
            "--sigstore-cache-dir", os.path.join(workdir, "sigstore-cache"),
            # No --log-no-color: v1.31 passes it straight to with_ansi(), so it turns colour on.
            "--log-level", "info", *extra_args,
        ]
        if sources_file:
            self.argv += ["--sources-path", sources_file]
        self.env = {"KUBECONFIG": kubeconfig}
        self.cwd = workdir
        self.proc = None
        self.starts = 0

    def start(self, timeout=120):
        """Starts it and waits until its readiness probe answers; returns the seconds taken."""
        _no_proxy_opener()
        self.starts += 1
        t = time.monotonic()
        self.proc = self.procs.start(self.name, self.argv, env=self.env, cwd=self.cwd)
        self.wait_ready(timeout)
        return time.monotonic() - t

    @property
    def name(self):
        """The current process's name in the logs: policy-server, then policy-server-2..."""
        return "policy-server" if self.starts <= 1 else f"policy-server-{self.starts}"

    def ready(self):
        return _http_ok(f"http://127.0.0.1:{self.readiness}/readiness")

    def wait_ready(self, timeout=120):
        """Until its readiness probe answers (after start or thaw); fails if it exits."""
        self.procs.wait_ready(self.name, self.proc, self.ready, timeout)

    def kill(self):
        """SIGKILL, as the OOM killer or a node failure stops it."""
        self.proc.kill()
        self.proc.wait()

    def freeze(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def frozen(self):
        """Whether the kernel has stopped it (SIGSTOP is delivered asynchronously)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "T"

    def thaw(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def rss_kib(self):
        """Resident memory now, from /proc (VmRSS), and its peak (VmHWM)."""
        values = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
        return values.get("VmRSS", 0), values.get("VmHWM", 0)


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
