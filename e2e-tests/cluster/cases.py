"""The cases: each creates pods through the real admission chain and asserts on the pod the
API server stored (read back with GET), not on what a webhook answered."""

import hashlib
import json
import os
import re
import time

import audit
from deploy import KSERVE_CONFIGURATION
from harness import Cases
from pods import (by_name, clone_pod, containers, expect, expect_equal, expect_one_modelcar,
                  expect_unique_names, fixture_pod, init_containers, summary)
from topology import policy

CASES = Cases()
case = CASES.case

KSERVE_POD = "kserve-predictor-before-kserve-webhook"
KSERVE_IMAGE = "quay.io/example/models-iris:v1"
DEFAULT_COMMAND = ["sh", "-c", "true"]
MODELCAR_SIZES = {"limits": {"cpu": "10m", "memory": "15Mi"},
                  "requests": {"cpu": "10m", "memory": "15Mi"}}


def create(cluster, pod):
    """POSTs the pod, then GETs what was stored. Returns (stored pod, create warnings)."""
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    api = cluster.api
    created = api.post(f"/api/v1/namespaces/{ns}/pods", pod)
    expect(created.status == 201,
           f"create {ns}/{name}: HTTP {created.status}: {json.dumps(created.body)[:3000]}")
    stored = api.must(api.get(f"/api/v1/namespaces/{ns}/pods/{name}"), f"get {ns}/{name}")
    return stored, created.warnings


def calls(cluster, pod, stored):
    """The webhook calls the API server made for this pod: [(round, configuration, mutated)]."""
    meta = pod["metadata"]
    event = audit.create_event(cluster.audit_log, meta["namespace"], meta["name"])
    expect(event is not None, f"no audit event for the create of {meta['name']}", stored)
    return [(r, conf, mutated) for r, conf, _, mutated in audit.webhook_calls(event)], event


def expect_started_first(stored, names, link="/mnt/models", default_container=None):
    """The modelcars `names` lead spec.containers, each with the postStart hook that waits
    for its link; kubectl's default container is kept on the container that was first."""
    leading = [c["name"] for c in containers(stored)][:len(names)]
    expect_equal(leading, names, "first containers", stored)
    for name in names:
        hook = (by_name(containers(stored), name).get("lifecycle") or {}).get("postStart") or {}
        script = " ".join((hook.get("exec") or {}).get("command") or [])
        expect(f"[ -e '{link}' ]" in script, f"{name} has no postStart hook waiting for {link}: "
               f"{hook}", stored)
    if default_container:
        annotations = stored["metadata"].get("annotations") or {}
        expect_equal(annotations.get("kubectl.kubernetes.io/default-container"),
                     default_container, "kubectl.kubernetes.io/default-container", stored)


def expect_prefetch(stored, name, image, pull_policy="IfNotPresent"):
    c = by_name(init_containers(stored), name)
    expect(c is not None, f"no init container {name}", stored)
    expect_equal(c["image"], image, f"{name} image", stored)
    expect_equal(c.get("command"), DEFAULT_COMMAND, f"{name} command", stored)
    expect_equal(c.get("imagePullPolicy"), pull_policy, f"{name} imagePullPolicy", stored)
    return c


# --- cluster-wide and namespaced policy x KServe v0.13 / v0.14 ----------------------------

@case("cluster-wide policy, KServe v0.13: prefetch from the annotation, then KServe's modelcar")
def clusterwide_kserve_v013(cluster):
    pod = fixture_pod(KSERVE_POD, "cw-kserve-v013")
    stored, _ = create(cluster, pod)
    expect_equal(summary(init_containers(stored)), [("modelcar-prefetch", KSERVE_IMAGE)],
                 "init containers", stored)
    expect_equal(summary(containers(stored)),
                 [("kserve-container", "kserve/sklearnserver:v0.13.0"), ("modelcar", KSERVE_IMAGE)],
                 "containers", stored)
    expect_one_modelcar(stored)
    expect_unique_names(stored)
    prefetch = expect_prefetch(stored, "modelcar-prefetch", KSERVE_IMAGE)
    expect_equal(prefetch.get("resources"), MODELCAR_SIZES, "modelcar-prefetch resources", stored)
    cw = policy("prefetch").unique_name
    seen, _ = calls(cluster, pod, stored)
    expect_equal(seen, [(0, cw, True), (0, KSERVE_CONFIGURATION, True)],
                 "webhook calls (round, configuration, mutated)", stored)


@case("cluster-wide policy, KServe v0.14: prefetch before KServe's modelcar-init, names unique")
def clusterwide_kserve_v014(cluster):
    pod = fixture_pod(KSERVE_POD, "cw-kserve-v014")
    stored, _ = create(cluster, pod)
    expect_equal(summary(init_containers(stored)),
                 [("modelcar-prefetch", KSERVE_IMAGE), ("modelcar-init", KSERVE_IMAGE)],
                 "init containers", stored)
    expect_equal([c["name"] for c in containers(stored)], ["kserve-container", "modelcar"],
                 "containers", stored)
    expect_one_modelcar(stored)
    expect_unique_names(stored)
    expect_prefetch(stored, "modelcar-prefetch", KSERVE_IMAGE)


@case("namespaced policy, KServe v0.13: copies KServe's modelcar and starts it first; KServe "
      "re-invoked, adds nothing")
def namespaced_kserve_v013(cluster):
    pod = fixture_pod(KSERVE_POD, "ns-kserve-v013")
    stored, _ = create(cluster, pod)
    expect_equal(summary(init_containers(stored)), [("modelcar-prefetch", KSERVE_IMAGE)],
                 "init containers", stored)
    expect_equal([c["name"] for c in containers(stored)], ["modelcar", "kserve-container"],
                 "containers", stored)
    expect_started_first(stored, ["modelcar"], default_container="kserve-container")
    expect_one_modelcar(stored)
    expect_unique_names(stored)
    prefetch = expect_prefetch(stored, "modelcar-prefetch", KSERVE_IMAGE)
    modelcar = by_name(containers(stored), "modelcar")
    expect_equal(prefetch.get("resources"), modelcar.get("resources"),
                 "modelcar-prefetch resources (copied from the modelcar)", stored)
    ns = policy("prefetch", "ns-kserve-v013").unique_name
    seen, _ = calls(cluster, pod, stored)
    expect_equal(seen, [(0, KSERVE_CONFIGURATION, True), (0, ns, True),
                        (1, KSERVE_CONFIGURATION, False)],
                 "webhook calls (round, configuration, mutated)", stored)


@case("namespaced policy, KServe v0.14: modelcar-init already pre-pulls; the modelcar starts "
      "first; KServe re-invoked, adds nothing")
def namespaced_kserve_v014(cluster):
    pod = fixture_pod(KSERVE_POD, "ns-kserve-v014")
    stored, _ = create(cluster, pod)
    expect_equal(summary(init_containers(stored)), [("modelcar-init", KSERVE_IMAGE)],
                 "init containers", stored)
    expect_started_first(stored, ["modelcar"], default_container="kserve-container")
    expect_one_modelcar(stored)
    expect_unique_names(stored)
    ns = policy("prefetch", "ns-kserve-v014").unique_name
    seen, _ = calls(cluster, pod, stored)
    expect_equal(seen, [(0, KSERVE_CONFIGURATION, True), (0, ns, True),
                        (1, KSERVE_CONFIGURATION, False)],
                 "webhook calls (round, configuration, mutated)", stored)


@case("namespaced policy, KServe v0.14 with uidModelcar in a pod that requires non-root: "
      "modelcar-init gets the modelcar's user, nothing else of it changes")
def namespaced_kserve_v014_non_root(cluster):
    pod = fixture_pod(PSA_POD, "ns-kserve-v014-uid1010")
    stored, _ = create(cluster, pod)
    init = by_name(init_containers(stored), "modelcar-init")
    expect(init is not None, "KServe added no modelcar-init", stored)
    expect_equal(init.get("securityContext"), {"runAsUser": 1010},
                 "modelcar-init securityContext", stored)
    reference, _ = create(cluster, clone_pod(pod, "kserve-v014-uid1010-only"))
    before = dict(by_name(init_containers(reference), "modelcar-init"))
    expect_equal({k: v for k, v in init.items() if k != "securityContext"},
                 {k: v for k, v in before.items() if k != "securityContext"},
                 "modelcar-init apart from its securityContext, against KServe's", stored)
    expect_started_first(stored, ["modelcar"], default_container="kserve-container")


# --- nativeSidecar and auto ---------------------------------------------------------------

LLM_POD = "llm-inference-service-modelcar"
TWO_MODELCARS_POD = "pod-two-modelcars"
TWO_MODELCAR_IMAGES = [("modelcar", "quay.io/example/models-a:v2"),
                       ("modelcar-1", "quay.io/example/models-b:latest")]


def expect_native_sidecar(stored, sent, name):
    """`name` moved from spec.containers to the init containers, as sent but for
    restartPolicy: Always and a startup probe."""
    expect(by_name(containers(stored), name) is None, f"{name} is still in spec.containers",
           stored)
    moved = by_name(init_containers(stored), name)
    expect(moved is not None, f"{name} is not among the init containers", stored)
    expect_equal(moved.get("restartPolicy"), "Always", f"{name} restartPolicy", stored)
    original = by_name(containers(sent), name)
    rest = {k: v for k, v in moved.items() if k not in ("restartPolicy", "startupProbe")}
    expect_equal(rest, original, f"{name} apart from restartPolicy and startupProbe", stored)
    return moved


@case("nativeSidecar: a self-carried modelcar is stored as a native sidecar with its probe")
def native_sidecar_llm(cluster):
    pod = fixture_pod(LLM_POD, "llm")
    stored, _ = create(cluster, pod)
    expect_equal([c["name"] for c in containers(stored)], ["main"], "containers", stored)
    expect_equal([c["name"] for c in init_containers(stored)], ["modelcar-init", "modelcar"],
                 "init containers", stored)
    moved = expect_native_sidecar(stored, pod, "modelcar")
    probe = moved.get("startupProbe") or {}
    command = " ".join((probe.get("exec") or {}).get("command") or [])
    expect("test -e" in command and "/mnt/models/qwen" in command,
           f"startup probe does not test the modelcar's link /mnt/models/qwen: {probe}", stored)
    expect_equal((probe.get("periodSeconds"), probe.get("failureThreshold")), (1, 120),
                 "startup probe periodSeconds, failureThreshold", stored)
    expect_unique_names(stored)


def put_node(cluster, name, kubelet_version):
    """Creates the Node unless it exists (a case run alone, or after another), and sets its
    kubelet version."""
    api = cluster.api
    created = api.post("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                          "metadata": {"name": name}})
    if created.status != 409:
        api.must(created, f"node {name}")
    api.must(api.merge_patch(f"/api/v1/nodes/{name}/status",
                             {"status": {"nodeInfo": {"kubeletVersion": kubelet_version}}}),
             f"node {name} status")
    stored = api.must(api.get(f"/api/v1/nodes/{name}"), f"get node {name}")
    expect_equal(stored["status"]["nodeInfo"]["kubeletVersion"], kubelet_version,
                 f"node {name} kubeletVersion as stored")


def expect_prefetched_two_modelcars(stored):
    expect_equal([c["name"] for c in containers(stored)], ["modelcar", "modelcar-1", "server"],
                 "containers", stored)
    expect_equal(summary(init_containers(stored)),
                 [("modelcar-prefetch", TWO_MODELCAR_IMAGES[0][1]),
                  ("modelcar-prefetch-1", TWO_MODELCAR_IMAGES[1][1])], "init containers", stored)
    expect_prefetch(stored, "modelcar-prefetch-1", TWO_MODELCAR_IMAGES[1][1], "Always")
    expect_unique_names(stored)


def put_new_kubelet_nodes(cluster):
    put_node(cluster, "gpu-node-a", "v1.31.4")
    put_node(cluster, "gpu-node-b", "v1.30.1+k3s1")


def expect_native_sidecars_two_modelcars(stored, pod):
    expect_equal([c["name"] for c in containers(stored)], ["server"], "containers", stored)
    expect_equal(summary(init_containers(stored)), TWO_MODELCAR_IMAGES, "init containers", stored)
    for name, _ in TWO_MODELCAR_IMAGES:
        expect_native_sidecar(stored, pod, name)


HOST_CAPABILITY = "kubernetes/list_resources_all"
# policy-server enforces policies.yml's hostCapabilities since 1.32; 1.31 reads the key and
# grants every host call anyway.
HOST_CAPABILITIES_ENFORCED_SINCE = (1, 32)


def enforces_host_capabilities(engine):
    m = re.match(r"(\d+)\.(\d+)", engine.version)
    return not m or (int(m.group(1)), int(m.group(2))) >= HOST_CAPABILITIES_ENFORCED_SINCE


def capability_refusals(warnings):
    return [w for w in warnings if "has not been granted access" in w]


def granted_host_capabilities(cluster, p):
    """What policies.yml, as deploy.py wrote it, grants the policy."""
    with open(os.path.join(cluster.plane.workdir, "policies.yml")) as f:
        entry = json.load(f).get(p.unique_name, {})
    if "hostCapabilities" not in entry:
        return "has no hostCapabilities"
    return f"grants hostCapabilities {json.dumps(entry['hostCapabilities'])}"


def expect_host_call_granted(cluster, p, stored, warnings):
    """A fallback to init containers because policy-server refused the host call is a
    deployment error (policies.yml), not the policy's: say so."""
    refused = capability_refusals(warnings)
    if refused and by_name(init_containers(stored), "modelcar-prefetch"):
        expect(False, f"policy-server {cluster.engine.version} refused {p.unique_name} the Node "
               f"list, so the policy fell back to init containers: its policies.yml entry "
               f"{granted_host_capabilities(cluster, p)}, where kubewarden-controller writes "
               f'["*"] (see deploy.policies_yml). Warning: {refused[0]}', stored)


@case("auto: every kubelet 1.29+ (Nodes in the API server) gives native sidecars")
def auto_all_nodes_new(cluster):
    put_new_kubelet_nodes(cluster)
    pod = fixture_pod(TWO_MODELCARS_POD, "auto")
    stored, warnings = create(cluster, pod)
    expect_host_call_granted(cluster, policy("prefetch-auto"), stored, warnings)
    expect_native_sidecars_two_modelcars(stored, pod)


@case("auto without the contextAwareResources grant: init containers, whatever the nodes")
def auto_without_grant(cluster):
    stored, _ = create(cluster, fixture_pod(TWO_MODELCARS_POD, "auto-no-grant"))
    expect_prefetched_two_modelcars(stored)


@case("auto, Node grant but hostCapabilities []: policy-server 1.32+ refuses the Node list "
      "(init containers, a warning naming the capability); 1.31 grants it (native sidecars)")
def auto_without_host_capabilities(cluster):
    put_new_kubelet_nodes(cluster)
    pod = fixture_pod(TWO_MODELCARS_POD, "auto-no-capability")
    stored, warnings = create(cluster, pod)
    refused = capability_refusals(warnings)
    version = cluster.engine.version
    if not enforces_host_capabilities(cluster.engine):
        expect(not refused, f"policy-server {version} refused a host call: {refused}", stored)
        expect_native_sidecars_two_modelcars(stored, pod)
        return f"policy-server {version} does not enforce hostCapabilities: native sidecars"
    expect_prefetched_two_modelcars(stored)
    expect(any(f"'{HOST_CAPABILITY}' host capability" in w for w in refused),
           f"policy-server {version}: no create warning saying the '{HOST_CAPABILITY}' host "
           f"capability has not been granted; warnings: {warnings}", stored)
    return f"policy-server {version} refused it: {refused[0]!r}"


@case("auto: a kubelet 1.28 node joins, the next pod gets init containers")
def auto_old_node_joins(cluster):
    put_node(cluster, "old-node", "v1.28.15-gke.1020000")
    # policy-server follows Nodes through a watch: wait (dry run) until the event is in.
    deadline = time.monotonic() + 15
    api = cluster.api
    while True:
        probe = fixture_pod(TWO_MODELCARS_POD, "auto")
        dry = api.post("/api/v1/namespaces/auto/pods?dryRun=All", probe)
        expect(dry.status == 201, f"dry-run create: HTTP {dry.status}: {dry.body}")
        if by_name(containers(dry.body), "modelcar") is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    stored, _ = create(cluster, fixture_pod(TWO_MODELCARS_POD, "auto"))
    expect_prefetched_two_modelcars(stored)


# --- module from an OCI registry -------------------------------------------------------

@case("module pulled by policy-server from an OCI registry stores the same pod", needs="registry")
def registry_module(cluster):
    pod = fixture_pod(KSERVE_POD, "registry-kserve-v013")
    from_registry, _ = create(cluster, pod)
    from_file, _ = create(cluster, clone_pod(pod, "cw-kserve-v013"))
    expect([c["name"] for c in init_containers(from_registry)] == ["modelcar-prefetch"],
           "the registry module did not pre-pull", from_registry)
    expect(from_registry["spec"] == from_file["spec"],
           "spec differs from the file module's:\n" + json.dumps(from_file["spec"], indent=1),
           from_registry)
    with open(cluster.module, "rb") as f:
        pushed = hashlib.sha256(f.read()).hexdigest()
    pulled = []
    for root, _, files in os.walk(cluster.downloads):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                pulled.append(hashlib.sha256(f.read()).hexdigest())
    expect(pushed in pulled, f"policy-server's download dir {cluster.downloads} holds no copy "
           f"of {cluster.module} (sha256 {pushed}); it holds {pulled}")


# --- audit annotations ----------------------------------------------------------------

@case("audit log: <webhook>/prefetch names each added init container and its image")
def audit_annotation(cluster):
    pod = fixture_pod(KSERVE_POD, "cw-kserve-v014")
    stored, _ = create(cluster, pod)
    _, event = calls(cluster, pod, stored)
    key = f"{policy('prefetch').webhook_name}/prefetch"
    annotations = event.get("annotations") or {}
    expect(key in annotations, f"audit event has no {key}; its annotations: "
           f"{json.dumps(annotations, indent=1)}", stored)
    added = [c for c in init_containers(stored) if c["name"].startswith("modelcar-prefetch")]
    expect(added, "no modelcar-prefetch init container", stored)
    for c in added:
        expect(c["name"] in annotations[key] and c["image"] in annotations[key],
               f"{key} = {annotations[key]!r} does not name {c['name']} and {c['image']}", stored)
    # Nothing for the webhooks that did not mutate: KServe's stand-in says nothing.
    expect(not any(k.endswith("/prefetch") and k != key for k in annotations),
           f"unexpected prefetch annotations: {annotations}", stored)


# --- runAsNonRoot (issue 13) ------------------------------------------------------------

PSA_POD = "kserve-predictor-psa-restricted"
PSA_IMAGE = "ghcr.io/example/models/granite:2.0"


@case("runAsNonRoot on every container, not the pod: the prefetch does not demand non-root")
def nonroot_containers_only(cluster):
    pod = fixture_pod(KSERVE_POD, "nonroot-uid1010")
    for c in containers(pod):
        c["securityContext"] = {"runAsNonRoot": True}
    stored, _ = create(cluster, pod)
    prefetch = by_name(init_containers(stored), "modelcar-prefetch")
    expect(prefetch is not None, "the image was not pre-pulled", stored)
    expect((prefetch.get("securityContext") or {}).get("runAsNonRoot") is not True,
           "modelcar-prefetch sets runAsNonRoot: true although KServe's modelcar (runAsUser "
           "1010, no runAsNonRoot) is not visible to it", stored)
    modelcar = by_name(containers(stored), "modelcar")
    expect_equal((modelcar.get("securityContext") or {}).get("runAsUser"), 1010,
                 "KServe modelcar runAsUser (uidModelcar)", stored)


@case("pod requires non-root, no user known: not pre-pulled, a warning names the fix")
def nonroot_pod_unknown_user(cluster):
    pod = fixture_pod(PSA_POD, "nonroot-uid1010")
    stored, warnings = create(cluster, pod)
    expect(by_name(init_containers(stored), "modelcar-prefetch") is None,
           "modelcar-prefetch was added: with runAsNonRoot from the pod and no runAsUser it "
           "would hold a root-default model image in Init", stored)
    expect(any("securityContext" in w and "runAsUser" in w for w in warnings),
           f"no warning naming `securityContext: {{runAsUser: ...}}`; warnings: {warnings}", stored)
    modelcar = by_name(containers(stored), "modelcar")
    expect(modelcar is not None and modelcar["image"] == PSA_IMAGE, "KServe added no modelcar",
           stored)
    expect_equal((modelcar.get("securityContext") or {}).get("runAsUser"), 1010,
                 "KServe modelcar runAsUser", stored)


@case("pod requires non-root, securityContext.runAsUser setting: pre-pulled as that user")
def nonroot_pod_user_from_settings(cluster):
    stored, _ = create(cluster, fixture_pod(PSA_POD, "nonroot-fix-uid1010"))
    prefetch = by_name(init_containers(stored), "modelcar-prefetch")
    expect(prefetch is not None and prefetch["image"] == PSA_IMAGE,
           "the image was not pre-pulled", stored)
    expect_equal((prefetch.get("securityContext") or {}).get("runAsUser"), 1010,
                 "modelcar-prefetch runAsUser", stored)


# --- pods that need nothing -----------------------------------------------------------

def _as_stored_without_webhooks(cluster, pod):
    """The same pod created where no webhook is configured: what 'unchanged' stores."""
    reference, _ = create(cluster, clone_pod(pod, "no-webhooks"))
    return reference


def _expect_stored_as_sent(cluster, fixture):
    pod = fixture_pod(fixture, "cw-kserve-v013") if isinstance(fixture, str) else fixture
    stored, _ = create(cluster, pod)
    reference = _as_stored_without_webhooks(cluster, pod)
    expect(stored["spec"] == reference["spec"],
           "spec differs from the same pod stored without webhooks:\n"
           + json.dumps(reference["spec"], indent=1), stored)
    for key in ("labels", "annotations"):
        expect_equal(stored["metadata"].get(key), reference["metadata"].get(key),
                     f"metadata.{key}", stored)
    seen, _ = calls(cluster, pod, stored)
    expect_equal(seen, [(0, policy("prefetch").unique_name, False)],
                 "webhook calls (round, configuration, mutated)", stored)


@case("a pod without a modelcar is stored exactly as sent")
def noop_plain_pod(cluster):
    _expect_stored_as_sent(cluster, "pod-without-modelcar")


@case("a pod the policy already changed is stored exactly as sent")
def noop_already_changed(cluster):
    first, _ = create(cluster, fixture_pod(LLM_POD, "cw-kserve-v013"))
    expect_started_first(first, ["modelcar"], "/mnt/models/qwen", default_container="main")
    pod = fixture_pod(LLM_POD, "cw-kserve-v013")
    pod["metadata"]["annotations"] = first["metadata"]["annotations"]
    pod["spec"]["containers"] = first["spec"]["containers"]
    _expect_stored_as_sent(cluster, pod)
