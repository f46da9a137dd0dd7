"""The repository's pod fixtures made runnable on the test node, otherwise left as they are.

The fixtures name images on registries this machine cannot reach (quay.io, ...): each is
replaced by one of the node's own images, in the containers and in KServe's `oci://`
storage-URI annotation alike. The pod is bound to the node (no scheduler runs), uses the
host network (the node has no pod network), loses the projected service-account volume
(no controller makes tokens or the kube-root-ca.crt ConfigMap here), and asks for no more
than the 2-core, GPU-less node has (`fit_resources`).
"""

import copy

SOURCE_URI = "internal.serving.kserve.io/storage-initializer-sourceuri"
OCI = "oci://"
TOKEN_VOLUME_PREFIX = "kube-api-access-"


def _all_containers(spec):
    return (spec.get("initContainers") or []) + (spec.get("containers") or []) + \
        (spec.get("ephemeralContainers") or [])


def model_images(pod):
    """The fixture's model images: KServe's storage URI and what modelcars run."""
    found = []
    uri = ((pod["metadata"].get("annotations") or {}).get(SOURCE_URI) or "")
    if uri.startswith(OCI):
        found.append(uri[len(OCI):])
    for c in _all_containers(pod["spec"]):
        if c["name"].startswith("modelcar") and c["image"] not in found:
            found.append(c["image"])
    return found


def rewrite_images(pod, images):
    """Replaces every image (and the oci:// annotation) by images[original]; fails naming
    what is not mapped, so no pod tries a registry the node cannot reach."""
    pod = copy.deepcopy(pod)
    missing = []
    for c in _all_containers(pod["spec"]):
        if c["image"] in images:
            c["image"] = images[c["image"]]
        else:
            missing.append(c["image"])
    annotations = pod["metadata"].get("annotations") or {}
    uri = annotations.get(SOURCE_URI) or ""
    if uri.startswith(OCI):
        if uri[len(OCI):] in images:
            annotations[SOURCE_URI] = OCI + images[uri[len(OCI):]]
        else:
            missing.append(uri)
    if missing:
        raise KeyError(f"no local image for {sorted(set(missing))}")
    return pod


# What one server container may ask of the 2-core test node; KServe's modelcars (10m, 15Mi)
# are far below it, so their sizes, which the race depends on, stay as KServe writes them.
MAX_CPU_CORES = 0.5
MAX_MEMORY = 1 << 30
MEMORY_UNITS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
                "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _cores(q):
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def _bytes(q):
    for unit, factor in MEMORY_UNITS.items():
        if q.endswith(unit):
            return float(q[:-len(unit)]) * factor
    return float(q)


def fit_resources(container):
    """Requests and limits the test node can admit: no extended resources (no GPU here),
    CPU and memory capped. Containers that fit already are left as they are."""
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        values = resources.get(kind)
        if not values:
            continue
        for name in [n for n in values if n not in ("cpu", "memory", "ephemeral-storage")]:
            del values[name]
        if "cpu" in values and _cores(str(values["cpu"])) > MAX_CPU_CORES:
            values["cpu"] = f"{int(MAX_CPU_CORES * 1000)}m"
        if "memory" in values and _bytes(str(values["memory"])) > MAX_MEMORY:
            values["memory"] = "1Gi"


def for_node(pod, node_name):
    pod = copy.deepcopy(pod)
    spec = pod["spec"]
    for c in _all_containers(spec):
        fit_resources(c)
    spec["nodeName"] = node_name
    spec["hostNetwork"] = True
    tokens = {v["name"] for v in spec.get("volumes") or []
              if v["name"].startswith(TOKEN_VOLUME_PREFIX) and "projected" in v}
    spec["volumes"] = [v for v in spec.get("volumes") or [] if v["name"] not in tokens]
    for c in _all_containers(spec):
        mounts = [m for m in c.get("volumeMounts") or [] if m["name"] not in tokens]
        if mounts:
            c["volumeMounts"] = mounts
        else:
            c.pop("volumeMounts", None)
    return pod


def probe_model(pod, container, model_path, period=1):
    """The server's readiness is the model being there (the stand-in serves nothing to
    probe over TCP), checked every `period` seconds."""
    pod = copy.deepcopy(pod)
    for c in pod["spec"]["containers"]:
        if c["name"] == container:
            c["readinessProbe"] = {"exec": {"command": ["test", "-e", model_path]},
                                   "periodSeconds": period, "timeoutSeconds": 1,
                                   "successThreshold": 1, "failureThreshold": 3}
            return pod
    raise KeyError(f"no container {container}")
