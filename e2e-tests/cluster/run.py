#!/usr/bin/env python3
"""`make e2e-cluster`: the annotated policy in a real control plane.

Starts etcd, kube-apiserver, policy-server, the KServe pod-webhook stand-in and (for one case)
an OCI registry on 127.0.0.1, in a private network namespace when the machine allows it;
deploys the policy as Kubewarden would; runs the cases once per Kubewarden engine found;
stops every program it started. Ends with `N passed, M failed[, K skipped]`. See README.md
beside this file.

  python3 e2e-tests/cluster/run.py [--module annotated-policy.wasm] [--keep] [CASE-SUBSTRING...]
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), "lib")]
# Leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True

import binaries  # noqa: E402
import controlplane  # noqa: E402
import harness  # noqa: E402
import registry  # noqa: E402
from cases import CASES  # noqa: E402
from topology import NAMESPACES, POLICIES  # noqa: E402
import load  # noqa: E402,F401  (registers the load case, after the functional ones)
import faults  # noqa: E402,F401  (registers the fault cases, after load)

REQUIRED = ("kube-apiserver", "etcd", "policy-server", "kwctl", "openssl")
HOW_TO_GET = ("The control-plane suite needs kube-apiserver, etcd, policy-server and kwctl:\n"
              + binaries.HOW_TO_GET_CONTROL_PLANE + "\n" + binaries.HOW_TO_GET_ENGINE + "\n"
              "  - docker-registry (Debian package docker-registry) for the OCI-registry case\n"
              + binaries.HOW_TO_TRY_ON_A_CLUSTER)


@dataclass
class Cluster(harness.OnControlPlane):
    """What a case gets: the control plane and where the module came from."""
    plane: harness.ControlPlane
    module: str
    registry_module: str

    @property
    def downloads(self):
        return self.plane.policy_server.downloads


def bring_up(bins, engine, procs, workdir, module):
    t0 = time.monotonic()
    etcd_dir = controlplane.etcd_data_dir(workdir)
    procs.cleanup.append(lambda: controlplane.remove_tree(etcd_dir))
    registry_module = sources = None
    if bins.get("docker-registry"):
        registry_module, sources = registry.start(procs, bins["docker-registry"], workdir)
        registry.push(engine.kwctl, module, registry_module, sources, workdir)
    plane = harness.start_control_plane(bins, engine, procs, workdir, etcd_dir, POLICIES,
                                        NAMESPACES, module, registry_module, sources)
    print(f"# control plane up in {time.monotonic() - t0:.1f}s (work dir {workdir})", flush=True)
    return Cluster(plane, module, registry_module)


def main():
    parser = argparse.ArgumentParser(description="modelcar-prefetch in a real control plane")
    parser.add_argument("--module", default=os.path.join(ROOT, "annotated-policy.wasm"))
    parser.add_argument("--keep", action="store_true", help="keep the work dir and logs")
    parser.add_argument("cases", nargs="*", help="run only cases whose title contains one")
    args = parser.parse_args()

    bins = binaries.locate()
    module = os.path.abspath(args.module)
    status = harness.prepare(__file__, sys.argv[1:], bins, REQUIRED, module)
    if status is not None:
        return status

    def run_engine(engine, procs, workdir):
        cluster = bring_up(bins, engine, procs, workdir, module)

        def unavailable(needs):
            if needs == "registry" and not cluster.registry_module:
                return "docker-registry is not installed"
            return None
        return CASES.run(cluster, args.cases, unavailable)

    return harness.run_suite("control-plane suite", bins, REQUIRED, HOW_TO_GET, CASES,
                             args.cases, args.keep, run_engine)


if __name__ == "__main__":
    sys.exit(main())
