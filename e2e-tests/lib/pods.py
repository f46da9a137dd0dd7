"""Pods to create (from the kwctl suite's fixtures) and what to read back from stored ones."""

import copy
import itertools
import json
import os

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
_serial = itertools.count(1)


class CaseFailure(Exception):
    pass


def fixture_pod(fixture, namespace, prefix=None):
    """The fixture's pod as a client would create it: a fixed name instead of generateName,
    none of what the API server sets itself (managedFields, status) and no owner."""
    with open(os.path.join(FIXTURES, f"{fixture}.json")) as f:
        pod = json.load(f)["object"]
    meta = pod["metadata"]
    base = prefix or meta.get("generateName", "pod-").rstrip("-")
    for key in ("generateName", "managedFields", "ownerReferences", "creationTimestamp"):
        meta.pop(key, None)
    meta["name"] = f"{base}-{next(_serial)}"
    meta["namespace"] = namespace
    pod.pop("status", None)
    return pod


def clone_pod(pod, namespace):
    other = copy.deepcopy(pod)
    other["metadata"]["name"] = f"{pod['metadata']['name'].rsplit('-', 1)[0]}-{next(_serial)}"
    other["metadata"]["namespace"] = namespace
    return other


def init_containers(pod):
    return pod["spec"].get("initContainers") or []


def containers(pod):
    return pod["spec"].get("containers") or []


def by_name(items, name):
    for c in items:
        if c["name"] == name:
            return c
    return None


def summary(items):
    return [(c["name"], c["image"]) for c in items]


def shown(pod):
    """The stored pod for a failure message, without the noise of managedFields."""
    pod = copy.deepcopy(pod)
    pod.get("metadata", {}).pop("managedFields", None)
    return json.dumps(pod, indent=1, sort_keys=True)


def expect(condition, message, pod=None):
    if not condition:
        raise CaseFailure(message + (f"\nstored pod:\n{shown(pod)}" if pod is not None else ""))


def expect_equal(actual, expected, what, pod=None):
    expect(actual == expected, f"{what}: expected {expected!r}, got {actual!r}", pod)


def expect_unique_names(pod):
    names = [c["name"] for c in init_containers(pod) + containers(pod)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    expect(not duplicates, f"container names used twice: {duplicates}", pod)


def expect_one_modelcar(pod):
    """KServe injected its modelcar once: one `modelcar`, at most one `modelcar-init`."""
    expect_equal([c["name"] for c in containers(pod)].count("modelcar"), 1,
                 "containers named modelcar", pod)
    expect([c["name"] for c in init_containers(pod)].count("modelcar-init") <= 1,
           "KServe's modelcar-init was added twice", pod)
