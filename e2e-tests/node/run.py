#!/usr/bin/env python3
"""`make e2e-node`: KServe-shaped pods on a real node (kubelet, containerd, runc).

Builds the node's images from a static busybox, starts the control plane of lib/ (etcd,
kube-apiserver, policy-server with the annotated module, the KServe stand-in), a registry
behind a pacing proxy, containerd and a kubelet, all in a private network and mount
namespace; runs each scenario --runs times and measures every pod from creation to Ready
(server restarts, the kubelet's pull time, the states it went through); writes one JSON
line per pod to <work dir>/results.jsonl (and --results FILE); stops every program by PID
and leaves nothing on the machine. See README.md beside this file.

  python3 e2e-tests/node/run.py [--runs N] [--keep] [SCENARIO-SUBSTRING...]
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), "lib")]
# Leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True

import binaries  # noqa: E402
import harness  # noqa: E402
import images  # noqa: E402
import node as node_mod  # noqa: E402
import scenarios  # noqa: E402
from containerd import cni_bin_dir  # noqa: E402

REQUIRED = ("kubelet", "kube-apiserver", "etcd", "crictl", "policy-server", "kwctl",
            "containerd", "runc", "ctr", "skopeo", "umoci", "busybox", "docker-registry",
            "openssl", "cni-loopback")
HOW_TO_GET = ("The node suite needs a kubelet, crictl, kube-apiserver, etcd, policy-server and "
              "kwctl:\n" + binaries.HOW_TO_GET_KUBELET + "\n" + binaries.HOW_TO_GET_CRICTL +
              "\n" + binaries.HOW_TO_GET_CONTROL_PLANE + "\n" + binaries.HOW_TO_GET_ENGINE +
              "\n  - containerd, runc, ctr, skopeo, umoci, a static busybox, docker-registry "
              "and the loopback CNI plugin:\n    Debian's containerd runc skopeo umoci "
              "busybox-static docker-registry containernetworking-plugins\n"
              "    (scripts/install-test-deps.sh)\n" + binaries.HOW_TO_TRY_ON_A_CLUSTER)


def build_cases(runs):
    cases = harness.Cases()
    for sc in scenarios.SCENARIOS:
        def fn(node, sc=sc):
            return scenarios.run_scenario(node, sc, runs)
        fn.__name__ = sc.slug
        cases.case(sc.title)(fn)
    return cases


def main():
    parser = argparse.ArgumentParser(description="modelcar-prefetch on a real node")
    parser.add_argument("--module", default=os.path.join(ROOT, "annotated-policy.wasm"))
    parser.add_argument("--runs", type=int, default=int(os.environ.get("E2E_NODE_RUNS", 1)),
                        help="pods per scenario (default 1; the README's figures: 5)")
    parser.add_argument("--model-mib", type=int,
                        default=int(os.environ.get("E2E_NODE_MODEL_MIB",
                                                   images.DEFAULT_MODEL_MIB)))
    parser.add_argument("--rate-mib", type=float,
                        default=float(os.environ.get("E2E_NODE_RATE_MIB",
                                                     node_mod.DEFAULT_RATE_MIB)),
                        help="registry bandwidth for all pulls together, MiB/s")
    parser.add_argument("--results", action="append", default=[],
                        help="also append the JSON lines to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and logs")
    parser.add_argument("scenarios", nargs="*", help="run only scenarios whose title has one")
    args = parser.parse_args()

    bins = binaries.locate()
    bins.paths["cni-loopback"] = cni_bin_dir()
    module = os.path.abspath(args.module)
    status = harness.prepare(__file__, sys.argv[1:], bins, REQUIRED, module, mount=True)
    if status is not None:
        return status
    cases = build_cases(args.runs)
    settings = node_mod.Settings(model_mib=args.model_mib, rate_mib=args.rate_mib)

    def run_engine(engine, procs, workdir):
        host = node_mod.Host(workdir)
        procs.cleanup.append(host.teardown)  # also when this function is cut short
        try:
            node = node_mod.bring_up(bins, engine, procs, workdir, module, scenarios.POLICIES,
                                     scenarios.NAMESPACES, settings, host)
            node.results = [os.path.join(workdir, "results.jsonl")] + \
                [os.path.abspath(p) for p in args.results]
            outcome = cases.run(node, args.scenarios)
            print(f"# results: {', '.join(node.results)}", flush=True)
            return outcome
        finally:
            # Before run_suite stops the programs: the pods go through the CRI while
            # containerd still runs.
            host.teardown()

    return harness.run_suite("node suite", bins, REQUIRED, HOW_TO_GET, cases, args.scenarios,
                             args.keep, run_engine, required_env="E2E_NODE_REQUIRED")


if __name__ == "__main__":
    sys.exit(main())
