#!/usr/bin/env python3
"""`make e2e-cluster`: the annotated policy in a real control plane.

Starts etcd, kube-apiserver, policy-server, the KServe pod-webhook stand-in and (for one case)
an OCI registry on 127.0.0.1, in a private network namespace when the machine allows it;
deploys the policy as Kubewarden would; runs the cases; stops every program it started.
Ends with `N passed, M failed[, K skipped]`. See README.md beside this file.

  python3 e2e-tests/cluster/run.py [--module annotated-policy.wasm] [--keep] [CASE-SUBSTRING...]
"""

import argparse
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
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
# Leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True

import binaries  # noqa: E402
import certs as pki  # noqa: E402
import controlplane  # noqa: E402
import deploy  # noqa: E402
import registry  # noqa: E402
from apiclient import Api  # noqa: E402
from cases import CASES, KSERVE_POD  # noqa: E402
from pods import CaseFailure, by_name, containers, fixture_pod  # noqa: E402
from processes import Failed, Processes, free_port  # noqa: E402
import load  # noqa: E402,F401  (registers the load case, which runs last)

REQUIRED = ("kube-apiserver", "etcd", "policy-server", "kwctl", "openssl")
NETNS_MARK = "MODELCAR_PREFETCH_E2E_NETNS"


@dataclass
class Cluster:
    api: Api
    audit_log: str
    module: str
    downloads: str
    registry_module: str


def summary_line(passed, failed, skipped):
    line = f"{passed} passed, {failed} failed"
    return line + (f", {skipped} skipped" if skipped else "")


def reexec_in_private_netns():
    """Runs this script again in a new network namespace with only loopback up, so nothing
    the programs try (policy-server fetches Sigstore's trust root) leaves the machine and no
    port can clash with other work. Returns only when that is not possible here."""
    if os.environ.get(NETNS_MARK) or not shutil.which("unshare") or not shutil.which("ip"):
        return
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        print("# no private network namespace here (unshare --net failed): using the host's "
              "loopback", flush=True)
        return
    os.environ[NETNS_MARK] = "1"
    os.execvp("unshare", ["unshare", "--net", "--", "sh", "-c",
                          'ip link set lo up && exec "$@"', "sh",
                          sys.executable, os.path.abspath(__file__), *sys.argv[1:]])


def start_standin(procs, certs_, workdir):
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


def wait_for_webhooks(api, timeout=30):
    """The API server loads webhook configurations from a watch: wait until it calls the
    one created last (KServe's), by dry-run creates."""
    deadline = time.monotonic() + timeout
    while True:
        probe = fixture_pod(KSERVE_POD, "load-kserve-only", prefix="webhook-probe")
        r = api.post("/api/v1/namespaces/load-kserve-only/pods?dryRun=All", probe)
        if r.status == 201 and by_name(containers(r.body), "modelcar"):
            return
        if time.monotonic() > deadline:
            raise Failed(f"the API server did not call the webhooks within {timeout}s; last "
                         f"dry-run create: HTTP {r.status}: {str(r.body)[:1000]}")
        time.sleep(0.2)


def bring_up(bins, procs, workdir, module, etcd_dir):
    t0 = time.monotonic()
    certs_ = pki.make(bins["openssl"], workdir)
    etcd_port = controlplane.start_etcd(procs, bins["etcd"], etcd_dir)
    registry_module = sources = None
    if bins.paths.get("docker-registry"):
        registry_module, sources = registry.start(procs, bins["docker-registry"], workdir)
        registry.push(bins["kwctl"], module, registry_module, sources, workdir)
    apiserver = controlplane.start_apiserver(procs, bins["kube-apiserver"], certs_, workdir,
                                             etcd_port)
    policies = os.path.join(workdir, "policies.yml")
    with open(policies, "w") as f:
        f.write(deploy.policies_yml(module, registry_module))
    ps_port, downloads = controlplane.start_policy_server(
        procs, bins["policy-server"], certs_, workdir, policies, sources, apiserver.kubeconfig)
    standin_port = start_standin(procs, certs_, workdir)
    api = Api(apiserver.port, apiserver.token, certs_.ca_cert)
    deploy.apply(api, ps_port, standin_port, certs_.ca_pem(), registry_module is not None)
    wait_for_webhooks(api)
    print(f"# control plane up in {time.monotonic() - t0:.1f}s (work dir {workdir})", flush=True)
    return Cluster(api, apiserver.audit_log, module, downloads, registry_module)


def run_cases(cluster, selected):
    passed = failed = skipped = 0
    for name, fn, needs in CASES:
        if selected and not any(s in name or s == fn.__name__ for s in selected):
            continue
        if needs == "registry" and not cluster.registry_module:
            skipped += 1
            print(f"skip - {name}: docker-registry is not installed", flush=True)
            continue
        t = time.monotonic()
        try:
            detail = fn(cluster)
            passed += 1
            extra = f": {detail}" if detail else ""
            print(f"ok   - {name} ({time.monotonic() - t:.1f}s){extra}", flush=True)
        except CaseFailure as e:
            failed += 1
            print(f"FAIL - {name}\n" + _indent(str(e)), flush=True)
        except Exception:  # a broken case or a dead program: report it, run the rest
            failed += 1
            print(f"FAIL - {name} (error)\n" + _indent(traceback.format_exc()), flush=True)
    return passed, failed, skipped


def _indent(text):
    return "\n".join("    " + line for line in text.splitlines())


def main():
    parser = argparse.ArgumentParser(description="modelcar-prefetch in a real control plane")
    parser.add_argument("--module", default=os.path.join(ROOT, "annotated-policy.wasm"))
    parser.add_argument("--keep", action="store_true", help="keep the work dir and logs")
    parser.add_argument("cases", nargs="*", help="run only cases whose title contains one")
    args = parser.parse_args()

    bins = binaries.locate()
    missing = bins.missing(REQUIRED)
    if missing:
        print(f"# skipping the control-plane suite: {', '.join(missing)} not found\n"
              + binaries.HOW_TO_GET)
        print(summary_line(0, 0, len(CASES)))
        # Where the engine is expected (CI with its binaries), missing means broken.
        return 1 if os.environ.get("E2E_CLUSTER_REQUIRED") == "1" else 0
    module = os.path.abspath(args.module)
    if not os.path.isfile(module):
        print(f"# {module} is missing: run `make annotated-policy.wasm`")
        print(summary_line(0, 1, 0))
        return 1

    reexec_in_private_netns()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = tempfile.mkdtemp(prefix="modelcar-prefetch-e2e-cluster-")
    os.makedirs(os.path.join(workdir, "logs"))
    procs = Processes(os.path.join(workdir, "logs"))
    etcd_dir = controlplane.etcd_data_dir(workdir)
    passed = failed = skipped = 0
    started = time.monotonic()
    try:
        cluster = bring_up(bins, procs, workdir, module, etcd_dir)
        passed, failed, skipped = run_cases(cluster, args.cases)
    except (KeyboardInterrupt, SystemExit):
        failed += 1
        print("FAIL - interrupted", flush=True)
    except Exception:
        failed += 1
        print("FAIL - starting the control plane\n" + _indent(traceback.format_exc()), flush=True)
    finally:
        procs.stop_all()
        controlplane.remove_tree(etcd_dir)
    # The binaries are all here (CI has them): a skipped case is a missing check.
    ok = failed == 0 and skipped == 0
    if skipped:
        print(f"# {skipped} case(s) skipped although the control-plane binaries are present: "
              "that counts as a failure")
    if ok and not args.keep:
        controlplane.remove_tree(workdir)
    else:
        print(f"# logs and work files kept in {workdir}/logs and {workdir}")
    print(f"# {time.monotonic() - started:.1f}s")
    print(summary_line(passed, failed, skipped))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
