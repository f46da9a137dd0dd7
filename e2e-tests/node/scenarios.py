"""What the node suite runs: one Scenario per line of SCENARIOS, each repeated --runs times
(a race shows in the spread, not in one run), each run one pod measured from creation to
Ready and written as one JSON line.

A scenario names a pod fixture, the namespace that selects its policy and KServe
behaviour (TOPOLOGY below, deployed as the control-plane suite deploys it), the stand-in
server image, and the pacer's FLAKY mode. More scenarios (policy cluster-wide or
namespaced, nativeSidecar, auto, flaky registry, runAsNonRoot) are one entry each.
"""

import re
import time
from dataclasses import dataclass

import images
import measure
from deploy import Namespace, Policy
from node import NODE_NAME
from nodepods import for_node, model_images, probe_model, rewrite_images
from pods import CaseFailure, fixture_pod

KSERVE_POD = "kserve-predictor-before-kserve-webhook"
LLM_POD = "llm-inference-service-modelcar"
NON_ROOT_CONTAINERS_POD = "kserve-predictor-containers-run-as-non-root"
NON_ROOT_POD = "kserve-predictor-psa-restricted"

POLICIES = [
    # ClusterAdmissionPolicies: before KServe's webhook, they see the annotation only.
    Policy("prefetch", {}),
    Policy("prefetch-uid", {"securityContext": {"runAsUser": 1010}}),
    Policy("prefetch-native", {"mode": "nativeSidecar"}),
    Policy("prefetch-auto", {"mode": "auto"}, context_aware=True),
    Policy("prefetch-ignore", {}, failure_policy="Ignore"),
    # AdmissionPolicies: after KServe's webhook, they see its modelcar.
    Policy("prefetch", {}, namespace="ns-kserve-v013"),
    Policy("prefetch", {}, namespace="ns-kserve-v014"),
    Policy("prefetch", {}, namespace="ns-kserve-v014-uid1010"),
    # The design before startModelcarFirst, kept for comparison: a pre-pull only.
    Policy("prefetch", {"startModelcarFirst": False}, namespace="ns-kserve-v013-pre-pull-only"),
]

NAMESPACES = [
    Namespace("kserve-v013", kserve="v0.13"),  # KServe alone: the race as users have it
    Namespace("kserve-v014", kserve="v0.14"),
    Namespace("kserve-v014-uid1010", kserve="v0.14-uid-1010"),
    Namespace("cw-kserve-v013", policy="prefetch", kserve="v0.13"),
    Namespace("cw-outage-kserve-v013", policy="prefetch-ignore", kserve="v0.13"),
    Namespace("ns-kserve-v013", kserve="v0.13"),
    Namespace("ns-kserve-v014", kserve="v0.14"),
    Namespace("ns-kserve-v014-uid1010", kserve="v0.14-uid-1010"),
    Namespace("ns-kserve-v013-pre-pull-only", kserve="v0.13"),
    Namespace("nonroot-kserve-v013-uid1010", kserve="v0.13-uid-1010"),
    Namespace("cw-nonroot-kserve-v013-uid1010", policy="prefetch", kserve="v0.13-uid-1010"),
    Namespace("cw-uid-kserve-v013-uid1010", policy="prefetch-uid", kserve="v0.13-uid-1010"),
    Namespace("llm"),  # an LLMInferenceService's pods: no KServe pod webhook, no policy
    Namespace("cw-llm", policy="prefetch"),
    Namespace("cw-native-llm", policy="prefetch-native"),
    Namespace("cw-auto-llm", policy="prefetch-auto"),
]


@dataclass
class Scenario:
    title: str
    fixture: str
    namespace: str
    server: str = "server"  # node image role: server | slow-server
    server_container: str = "kserve-container"
    flaky: str = ""  # pacer FLAKY mode during the run: "" | cut | fail
    expect_ready: bool = True
    # The design guarantees it: more restarts than this fail the scenario.
    max_server_restarts: int = None
    timeout: float = 180.0
    adjust: object = None  # pod -> pod, for what a fixture does not carry
    # (seconds after the create, fn(node)) run while the pod is followed
    actions: tuple = ()
    # fn(node) before the create and after it returned, around the admission
    around_create: tuple = (None, None)
    # fn(stored pod) -> problem or None: what the admission chain must have stored
    stored: object = None

    @property
    def slug(self):
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")[:40]


def llm_on_node(pod):
    """The LLMInferenceService pod with KServe's uidModelcar (1010) on `main` and the
    modelcar, as KServe sets it: `main` must run as non-root, and a server reaches the model
    through /proc/<modelcar>/root only as the modelcar's own user; its model lies under the
    modelcar's link /mnt/models/qwen."""
    for c in pod["spec"]["containers"]:
        if c["name"] == "main":
            c.setdefault("env", []).append({"name": "MODEL_FILE",
                                            "value": "/mnt/models/qwen/model.bin"})
            c["readinessProbe"]["exec"]["command"][-1] = "/mnt/models/qwen/model.bin"
        if c["name"] in ("main", "modelcar"):
            c.setdefault("securityContext", {})["runAsUser"] = 1010
    return pod


def kill_policy_server(node):
    node.plane.policy_server.kill()


def start_policy_server(node):
    node.plane.policy_server.start()


def restart_kubelet(node):
    print(f"#     kubelet restarted in {node.restart_kubelet():.1f}s", flush=True)


def unmutated(stored):
    names = [c["name"] for c in stored["spec"].get("initContainers") or []]
    return f"modelcar-prefetch was added: {names}" if "modelcar-prefetch" in names else None


def llm(title, namespace, **kw):
    return Scenario(title, LLM_POD, namespace, server_container="main", adjust=llm_on_node,
                    **kw)


SCENARIOS = [
    # KServe InferenceService pods, exiting at once without their model.
    Scenario("KServe v0.13 modelcar, no policy", KSERVE_POD, "kserve-v013"),
    Scenario("KServe v0.14 modelcar-init, no policy", KSERVE_POD, "kserve-v014"),
    Scenario("KServe v0.13, ClusterAdmissionPolicy (initContainer)", KSERVE_POD,
             "cw-kserve-v013"),
    Scenario("KServe v0.13, AdmissionPolicy (initContainer, modelcar first)", KSERVE_POD,
             "ns-kserve-v013", max_server_restarts=0),
    Scenario("KServe v0.14, AdmissionPolicy (modelcar first)", KSERVE_POD, "ns-kserve-v014",
             max_server_restarts=0),
    Scenario("KServe v0.13, AdmissionPolicy, pre-pull only (startModelcarFirst: false)",
             KSERVE_POD, "ns-kserve-v013-pre-pull-only"),
    # A server that takes a few seconds before it looks for its model.
    Scenario("slow server, KServe v0.13, no policy", KSERVE_POD, "kserve-v013",
             server="slow-server"),
    Scenario("slow server, KServe v0.13, ClusterAdmissionPolicy", KSERVE_POD,
             "cw-kserve-v013", server="slow-server"),
    # The first pull of the model fails (the registry errs for 5 s after cutting it).
    Scenario("flaky registry, KServe v0.13, no policy", KSERVE_POD, "kserve-v013",
             flaky="fail"),
    Scenario("flaky registry, KServe v0.13, ClusterAdmissionPolicy", KSERVE_POD,
             "cw-kserve-v013", flaky="fail"),
    Scenario("flaky registry, KServe v0.13, AdmissionPolicy (modelcar first)", KSERVE_POD,
             "ns-kserve-v013", flaky="fail", max_server_restarts=0),
    # Self-carried modelcars (LLMInferenceService).
    llm("LLMInferenceService, no policy", "llm"),
    llm("LLMInferenceService, initContainer mode (modelcar first)", "cw-llm",
        max_server_restarts=0),
    llm("LLMInferenceService, nativeSidecar", "cw-native-llm", max_server_restarts=0),
    llm("LLMInferenceService, auto (the node's kubelet decides)", "cw-auto-llm",
        max_server_restarts=0),
    # README "Pods that must run as non-root".
    Scenario("non-root containers (scenario 1), KServe v0.13 uidModelcar, no policy",
             NON_ROOT_CONTAINERS_POD, "nonroot-kserve-v013-uid1010"),
    Scenario("non-root containers (scenario 1), ClusterAdmissionPolicy",
             NON_ROOT_CONTAINERS_POD, "cw-nonroot-kserve-v013-uid1010"),
    Scenario("non-root pod (scenario 2), KServe v0.13 uidModelcar, no policy", NON_ROOT_POD,
             "nonroot-kserve-v013-uid1010"),
    Scenario("non-root pod (scenario 2), ClusterAdmissionPolicy with runAsUser 1010",
             NON_ROOT_POD, "cw-uid-kserve-v013-uid1010"),
    Scenario("non-root pod, KServe v0.14 uidModelcar, no policy: modelcar-init never starts",
             NON_ROOT_POD, "kserve-v014-uid1010", expect_ready=False, timeout=75),
    Scenario("non-root pod, KServe v0.14 uidModelcar, AdmissionPolicy", NON_ROOT_POD,
             "ns-kserve-v014-uid1010", max_server_restarts=0),
    # Faults.
    Scenario("policy-server down at admission (failurePolicy Ignore): unmutated pod",
             KSERVE_POD, "cw-outage-kserve-v013",
             around_create=(kill_policy_server, start_policy_server), stored=unmutated),
    Scenario("kubelet restarted while the pre-pull init container pulls", KSERVE_POD,
             "cw-kserve-v013", actions=((8.0, restart_kubelet),)),
]


def node_pod(node, sc, model_ref):
    pod = fixture_pod(sc.fixture, sc.namespace, prefix=sc.slug)
    models = model_images(pod)
    mapping = {}
    for c in (pod["spec"].get("initContainers") or []) + pod["spec"]["containers"]:
        mapping[c["image"]] = node.images[sc.server]
    mapping.update({m: model_ref for m in models})
    pod = probe_model(for_node(rewrite_images(pod, mapping), NODE_NAME), sc.server_container,
                      images.MODEL_PATH)
    return sc.adjust(pod) if sc.adjust else pod


def model_transfers(transfers):
    """The pacer's view of the model layer's GETs."""
    return {"gets": len(transfers), "cut": sum(1 for t in transfers if t["cut"]),
            "refused": sum(1 for t in transfers if t["status"] >= 500),
            "bytes": sum(t["sent"] for t in transfers),
            "seconds": round(sum(t.get("seconds", 0) for t in transfers), 2)}


def run_once(node, sc, run):
    """One pod: the model image checked absent, the pod created and followed, deleted, the
    image removed again."""
    tag = f"{sc.slug}-{run}-{time.time_ns() % 10**9}"
    model_ref = node.model_reference(tag)
    node.containerd.expect_gone(node.model)
    pod = node_pod(node, sc, model_ref)
    node.pacer.configure(flaky=sc.flaky)
    node.pacer.reset()
    stored = None
    try:
        m, stored = measure.follow(node, pod, sc.server_container, model_ref, sc.timeout,
                                   sc.actions, sc.around_create)
        m.admitted = measure.admitted_shape(stored)
        m.registry = model_transfers(node.pacer.transfers(node.model.layers[-1]))
        return m
    finally:
        node.pacer.configure(flaky="")
        measure.delete_and_wait(node.api, pod)
        if stored is not None:
            node.containerd.wait_pod_stopped(stored["metadata"]["uid"])
        node.containerd.remove_image(node.model)


def run_scenario(node, sc, runs):
    """Returns the case's one-line detail; fails when a run does not end as expected."""
    measured = []
    for run in range(1, runs + 1):
        m = run_once(node, sc, run)
        measured.append(m)
        line = m.as_json(scenario=sc.title, run=run, **node.facts)
        for path in node.results:
            with open(path, "a") as f:
                f.write(line + "\n")
        print(f"#   {sc.title}, run {run}: {m.summary()}", flush=True)
    wrong = [m for m in measured if m.ready != sc.expect_ready]
    if wrong:
        raise CaseFailure("expected " + ("Ready" if sc.expect_ready else "never Ready") +
                          f" within {sc.timeout:.0f}s; the pod's states:\n" +
                          "\n".join(m.states_text() for m in wrong))
    if sc.max_server_restarts is not None:
        restarted = [m for m in measured if m.server_restarts_at_ready > sc.max_server_restarts]
        if restarted:
            raise CaseFailure(f"the model server restarted more than {sc.max_server_restarts} "
                              "time(s), which this design rules out; the pod's states:\n" +
                              "\n".join(m.states_text() for m in restarted))
    if sc.stored:
        problems = [p for p in (sc.stored(m.stored) for m in measured) if p]
        if problems:
            raise CaseFailure("the stored pod is not what this scenario needs: " +
                              "; ".join(problems))
    restarts = ", ".join(str(m.server_restarts_at_ready) for m in measured if m.ready)
    ready = ", ".join(f"{m.seconds_to_ready:.1f}s" for m in measured if m.ready)
    pulls = ", ".join(f"{m.model_pull_seconds:.1f}s" for m in measured
                      if m.model_pull_seconds is not None)
    return f"server restarts at Ready {restarts}; Ready after {ready}; model pull {pulls}"
