"""What the suite deploys, shaped as Kubewarden's controller and KServe's manifests shape it:
one policies.yml entry and one MutatingWebhookConfiguration per policy, and KServe's
`inferenceservice.serving.kserve.io` configuration pointing at the stand-in. Each case gets
namespaces whose labels select the policy and the KServe behaviour it needs."""

import base64
import json
from dataclasses import dataclass

LABEL_POLICY = "e2e.modelcar-prefetch.io/clusterwide-policy"
LABEL_KSERVE = "e2e.modelcar-prefetch.io/kserve"
KSERVE_CONFIGURATION = "inferenceservice.serving.kserve.io"
# Kubewarden's controller keeps cluster-wide policies out of its own namespace.
KUBEWARDEN_NAMESPACE = "kubewarden"
POD_CREATE = [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
               "operations": ["CREATE"]}]


@dataclass
class Policy:
    name: str
    settings: dict
    namespace: str = None  # set: a namespaced AdmissionPolicy in that namespace
    from_registry: bool = False
    context_aware: bool = False
    # What kubewarden-controller writes: ["*"] for every policy (its default for namespaced
    # ones too). None leaves the key out, as a hand-written policies.yml may.
    host_capabilities: tuple = ("*",)
    timeout_eval_seconds: int = None
    failure_policy: str = "Fail"
    timeout_seconds: int = 10

    @property
    def unique_name(self):
        if self.namespace:
            return f"namespaced-{self.namespace}-{self.name}"
        return f"clusterwide-{self.name}"

    @property
    def webhook_name(self):
        return f"{self.unique_name}.kubewarden.admission"


@dataclass
class Namespace:
    name: str
    policy: str = None  # a cluster-wide policy's name
    kserve: str = None  # stand-in behaviour: v0.13, v0.14, v0.13-uid-1010
    labels: dict = None  # more labels, such as Pod Security Admission's


def find_policy(policies, name, namespace=None):
    for p in policies:
        if p.name == name and p.namespace == namespace:
            return p
    raise KeyError((name, namespace))


# Namespace label value -> the stand-in's URL path.
KSERVE_PATHS = {"v0.13": "/mutate-pods/v0.13", "v0.14": "/mutate-pods/v0.14",
                "v0.13-uid-1010": "/mutate-pods/v0.13/uid-1010",
                "v0.14-uid-1010": "/mutate-pods/v0.14/uid-1010"}


def policies_yml(policies, module_file, registry_module):
    """policy-server's policies.yml (JSON is YAML), as kubewarden-controller writes it.
    Entries for registry-pulled modules are left out when there is no registry."""
    entries = {}
    for p in policies:
        if p.from_registry and not registry_module:
            continue
        entry = {
            "namespacedName": {"namespace": p.namespace or "", "name": p.name},
            "module": registry_module if p.from_registry else f"file://{module_file}",
            "policyMode": "protect",
            "allowedToMutate": True,
            "settings": p.settings,
        }
        if p.context_aware:
            entry["contextAwareResources"] = [{"apiVersion": "v1", "kind": "Node"}]
        if p.host_capabilities is not None:
            entry["hostCapabilities"] = list(p.host_capabilities)
        if p.timeout_eval_seconds is not None:
            entry["timeoutEvalSeconds"] = p.timeout_eval_seconds
        entries[p.unique_name] = entry
    return json.dumps(entries, indent=2)


def _ca_bundle(ca_pem):
    return base64.b64encode(ca_pem).decode()


def policy_webhook(p, policy_server_port, ca_pem):
    """The MutatingWebhookConfiguration kubewarden-controller writes for a policy."""
    if p.namespace:
        selector = {"matchLabels": {"kubernetes.io/metadata.name": p.namespace}}
    else:
        selector = {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
             "values": [KUBEWARDEN_NAMESPACE]},
            # The policy's own spec.namespaceSelector, which the controller appends.
            {"key": LABEL_POLICY, "operator": "In", "values": [p.name]},
        ]}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": p.unique_name},
        "webhooks": [{
            "name": p.webhook_name,
            "clientConfig": {
                "url": f"https://127.0.0.1:{policy_server_port}/validate/{p.unique_name}",
                "caBundle": _ca_bundle(ca_pem),
            },
            "rules": POD_CREATE,
            "failurePolicy": p.failure_policy,
            "matchPolicy": "Equivalent",
            "namespaceSelector": selector,
            "sideEffects": "None",
            "timeoutSeconds": p.timeout_seconds,
            "admissionReviewVersions": ["v1"],
            # no reinvocationPolicy: the API server's default, Never, as Kubewarden leaves it
        }],
    }


def kserve_webhook(standin_port, ca_pem):
    """KServe's configuration (config/webhook/manifests.yaml, pod-mutator), one webhook per
    stand-in behaviour so that namespaces choose theirs."""
    webhooks = []
    for label, path in KSERVE_PATHS.items():
        webhooks.append({
            "name": f"{label.replace('.', '-')}.pod-mutator.kserve-stand-in",
            "clientConfig": {"url": f"https://127.0.0.1:{standin_port}{path}",
                             "caBundle": _ca_bundle(ca_pem)},
            "rules": POD_CREATE,
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "reinvocationPolicy": "IfNeeded",
            "admissionReviewVersions": ["v1beta1"],
            "namespaceSelector": {"matchExpressions": [
                {"key": "control-plane", "operator": "DoesNotExist"},
                {"key": LABEL_KSERVE, "operator": "In", "values": [label]},
            ]},
            "objectSelector": {"matchExpressions": [
                {"key": "serving.kserve.io/inferenceservice", "operator": "Exists"}]},
        })
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": KSERVE_CONFIGURATION},
        "webhooks": webhooks,
    }


def namespace_object(ns):
    labels = dict(ns.labels or {})
    if ns.policy:
        labels[LABEL_POLICY] = ns.policy
    if ns.kserve:
        labels[LABEL_KSERVE] = ns.kserve
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns.name, "labels": labels}}


def apply(api, policies, namespaces, policy_server_port, standin_port, ca_pem, with_registry):
    for ns in namespaces:
        api.must(api.post("/api/v1/namespaces", namespace_object(ns)), f"namespace {ns.name}")
    path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
    for p in policies:
        if p.from_registry and not with_registry:
            continue
        api.must(api.post(path, policy_webhook(p, policy_server_port, ca_pem)), p.unique_name)
    # Last: once the API server calls this one, it has loaded every configuration before it.
    api.must(api.post(path, kserve_webhook(standin_port, ca_pem)), KSERVE_CONFIGURATION)
