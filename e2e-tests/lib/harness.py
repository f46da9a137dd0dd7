"""What the engine suites do alike: run in a private network namespace, start the control
plane (etcd, kube-apiserver, policy-server, the KServe stand-in), run named cases once per
Kubewarden engine, report `N passed, M failed[, K skipped]`, stop every program by PID."""

import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from dataclasses import dataclass, field

import certs as pki
import controlplane
import deploy
from apiclient import Api
from pods import CaseFailure, by_name, containers, fixture_pod
from processes import Failed, Processes, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NETNS_MARK = "MODELCAR_PREFETCH_E2E_NETNS"


def summary_line(passed, failed, skipped):
    line = f"{passed} passed, {failed} failed"
    return line + (f", {skipped} skipped" if skipped else "")


def indent(text):
    return "\n".join("    " + line for line in text.splitlines())


def reexec_in_private_netns(script, argv, mount=False):
    """Runs `script` again in a new network namespace (and, with `mount`, a mount namespace)
    with only loopback up, so nothing the programs try (policy-server fetches Sigstore's trust
    root) leaves the machine and no port can clash with other work. Returns only when that is
    not possible here, or when this process already runs in one."""
    if os.environ.get(NETNS_MARK) or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    flags = ["--net"] + (["--mount", "--propagation", "private"] if mount else [])
    if subprocess.run(["unshare", *flags, "true"], capture_output=True).returncode != 0:
        print(f"# no private namespace here (unshare {' '.join(flags)} failed): using the "
              "host's loopback", flush=True)
        return False
    os.environ[NETNS_MARK] = "1"
    os.execvp("unshare", ["unshare", *flags, "--", "sh", "-c", 'ip link set lo up && exec "$@"',
                          "sh", sys.executable, os.path.abspath(script), *argv])


def prepare(script, argv, bins, required, module, mount=False):
    """What every suite does before it starts a program: where all of `required` is present,
    the module must exist, and the suite runs again in a private namespace (see
    reexec_in_private_netns). Returns an exit status to stop with, or None to go on (also
    when programs are missing: run_suite then skips, saying how to get them)."""
    if bins.missing(required):
        return None
    if not os.path.isfile(module):
        print(f"# {module} is missing: run `make annotated-policy.wasm`")
        print(summary_line(0, 1, 0))
        return 1
    reexec_in_private_netns(script, argv, mount)
    return None


def in_private_netns():
    return bool(os.environ.get(NETNS_MARK))


@dataclass
class Case:
    name: str
    fn: object
    needs: str = None


@dataclass
class Cases:
    """An ordered table of named cases; `@cases.case("title")` registers one."""
    items: list = field(default_factory=list)

    def case(self, name, needs=None):
        def register(fn):
            self.items.append(Case(name, fn, needs))
            return fn
        return register

    def selected(self, wanted):
        return [c for c in self.items
                if not wanted or any(s in c.name or s == c.fn.__name__ for s in wanted)]

    def run(self, context, wanted, unavailable=lambda needs: None):
        """Runs the selected cases; `unavailable(needs)` says why a case cannot run here.
        Returns (passed, failed, skipped)."""
        passed = failed = skipped = 0
        for c in self.selected(wanted):
            why = unavailable(c.needs) if c.needs else None
            if why:
                skipped += 1
                print(f"skip - {c.name}: {why}", flush=True)
                continue
            t = time.monotonic()
            try:
                detail = c.fn(context)
                passed += 1
                extra = f": {detail}" if detail else ""
                print(f"ok   - {c.name} ({time.monotonic() - t:.1f}s){extra}", flush=True)
            except CaseFailure as e:
                failed += 1
                print(f"FAIL - {c.name}\n" + indent(str(e)), flush=True)
            except Exception:  # a broken case or a dead program: report it, run the rest
                failed += 1
                print(f"FAIL - {c.name} (error)\n" + indent(traceback.format_exc()), flush=True)
        return passed, failed, skipped


@dataclass
class ControlPlane:
    api: Api
    audit_log: str
    kubeconfig: str
    certs: object
    policy_server: controlplane.PolicyServer
    standin_port: int
    workdir: str
    engine: object


class OnControlPlane:
    """What every suite's case object offers of its `plane` (a ControlPlane): the cases of
    all three suites reach the API server, the audit log and policy-server this way."""

    @property
    def api(self):
        return self.plane.api

    @property
    def audit_log(self):
        return self.plane.audit_log

    @property
    def policy_server(self):
        return self.plane.policy_server

    @property
    def engine(self):
        return self.plane.engine


def start_standin(procs, certs_):
    port = free_port()
    proc = procs.start("kserve-standin", [sys.executable, os.path.join(HERE, "kserve_standin.py"),
                                          "--port", str(port), "--cert", certs_.serving_cert,
                                          "--key", certs_.serving_key])
    context = ssl.create_default_context(cafile=certs_.ca_cert)

    def ready():
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=2,
                                    context=context) as r:
            return r.status == 200
    procs.wait_ready("kserve-standin", proc, ready, 30)
    return port


def start_control_plane(bins, engine, procs, workdir, etcd_dir, policies, namespaces,
                        module, registry_module=None, sources=None, policy_server_args=()):
    """etcd, kube-apiserver, policy-server serving `policies` (deploy.Policy) and the KServe
    stand-in; the namespaces and webhook configurations applied. Waits until the API server
    calls the webhooks."""
    certs_ = pki.make(bins["openssl"], workdir)
    etcd_port = controlplane.start_etcd(procs, bins["etcd"], etcd_dir)
    apiserver = controlplane.start_apiserver(procs, bins["kube-apiserver"], certs_, workdir,
                                             etcd_port)
    policies_file = os.path.join(workdir, "policies.yml")
    with open(policies_file, "w") as f:
        f.write(deploy.policies_yml(policies, module, registry_module))
    policy_server = controlplane.PolicyServer(
        procs, engine.policy_server, certs_, workdir, policies_file, sources, apiserver.kubeconfig,
        policy_server_args)
    policy_server.start()
    standin_port = start_standin(procs, certs_)
    api = Api(apiserver.port, apiserver.token, certs_.ca_cert)
    deploy.apply(api, policies, namespaces, policy_server.port, standin_port, certs_.ca_pem(),
                 registry_module is not None)
    wait_for_webhooks(api, policies, namespaces)
    return ControlPlane(api, apiserver.audit_log, apiserver.kubeconfig, certs_, policy_server,
                        standin_port, workdir, engine)


KSERVE_POD = "kserve-predictor-before-kserve-webhook"


def wait_for_webhooks(api, policies, namespaces, timeout=30):
    """The API server loads webhook configurations from a watch: waits until it calls the
    one deploy.apply creates last (KServe's), by dry-run creates in a namespace that selects
    the KServe stand-in and no policy (probing through a policy could warm its caches)."""
    namespaced = {p.namespace for p in policies if p.namespace}
    namespace = next((n.name for n in namespaces
                      if n.kserve and not n.policy and n.name not in namespaced), None)
    if namespace is None:
        raise Failed("no namespace selects the KServe stand-in alone: add one to probe with")

    def kserve_called():
        probe = fixture_pod(KSERVE_POD, namespace, prefix="webhook-probe")
        r = api.post(f"/api/v1/namespaces/{namespace}/pods?dryRun=All", probe)
        return r.status == 201 and by_name(containers(r.body), "modelcar")
    wait_until("the API server calling the webhooks", kserve_called, timeout)


def wait_until(what, condition, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise Failed(f"{what}: not within {timeout}s")
        time.sleep(interval)


def run_suite(title, bins, required, how_to_get, cases, wanted, keep, run_engine,
              required_env="E2E_CLUSTER_REQUIRED"):
    """The whole run: skip with `how_to_get` when a `required` program is missing, else
    `run_engine(engine, procs, workdir)` -> (passed, failed, skipped) once per engine, each
    in its own work directory with its own programs. Returns the exit status."""
    missing = bins.missing(required)
    if missing:
        print(f"# skipping the {title}: {', '.join(missing)} not found\n{how_to_get}")
        print(summary_line(0, 0, len(cases.selected(wanted))))
        # Where the engine is expected (CI with its binaries), missing means broken.
        return 1 if os.environ.get(required_env) == "1" else 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    totals = [0, 0, 0]
    kept = []
    started = time.monotonic()
    for engine in bins.engines:
        print(f"# {title}: {engine.label} (kwctl {engine.kwctl_version} {engine.kwctl}, "
              f"policy-server {engine.version} {engine.policy_server})", flush=True)
        workdir = tempfile.mkdtemp(prefix=f"modelcar-prefetch-{title.split()[0]}-")
        os.makedirs(os.path.join(workdir, "logs"))
        procs = Processes(os.path.join(workdir, "logs"))
        result = (0, 1, 0)
        try:
            result = run_engine(engine, procs, workdir)
        except (KeyboardInterrupt, SystemExit):
            print("FAIL - interrupted", flush=True)
        except Exception:
            print("FAIL - starting the programs\n" + indent(traceback.format_exc()), flush=True)
        finally:
            procs.stop_all()
        for i, n in enumerate(result):
            totals[i] += n
        if result[1] or result[2] or keep:
            kept.append(workdir)
        else:
            controlplane.remove_tree(workdir)
        print(f"# {engine.label}: {summary_line(*result)}", flush=True)
    passed, failed, skipped = totals
    # The binaries are all here (CI has them): a skipped case is a missing check.
    if skipped:
        print(f"# {skipped} case(s) skipped although the {title}'s programs are present: "
              "that counts as a failure")
    for workdir in kept:
        print(f"# logs and work files kept in {workdir}/logs and {workdir}")
    print(f"# {time.monotonic() - started:.1f}s")
    print(summary_line(passed, failed, skipped))
    return 0 if failed == 0 and skipped == 0 else 1
