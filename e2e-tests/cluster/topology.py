"""The policies and namespaces the control-plane suite deploys: each case's namespace selects
its policy (by a label standing for the policy's namespaceSelector) and the KServe
stand-in's behaviour."""

from deploy import Namespace, Policy, find_policy

POLICIES = [
    Policy("prefetch", {}),
    Policy("prefetch-uid", {"securityContext": {"runAsUser": 1010}}),
    Policy("prefetch-native", {"mode": "nativeSidecar"}),
    Policy("prefetch-auto", {"mode": "auto"}, context_aware=True),
    Policy("prefetch-auto-no-grant", {"mode": "auto"}),
    # policies.yml grants no host capability: policy-server 1.32+ refuses the Node list.
    Policy("prefetch-auto-no-capability", {"mode": "auto"}, context_aware=True,
           host_capabilities=()),
    Policy("prefetch-registry", {}, from_registry=True),
    # What the README recommends; timeoutSeconds 5 instead of Kubewarden's 10 keeps the
    # freeze case short.
    Policy("prefetch-ignore", {}, failure_policy="Ignore", timeout_seconds=5),
    Policy("prefetch", {}, namespace="ns-kserve-v013"),
    Policy("prefetch", {}, namespace="ns-kserve-v014"),
    Policy("prefetch", {}, namespace="ns-kserve-v014-uid1010"),
]

NAMESPACES = [
    Namespace("cw-kserve-v013", policy="prefetch", kserve="v0.13"),
    Namespace("cw-kserve-v014", policy="prefetch", kserve="v0.14"),
    Namespace("ns-kserve-v013", kserve="v0.13"),
    Namespace("ns-kserve-v014", kserve="v0.14"),
    Namespace("llm", policy="prefetch-native"),
    Namespace("auto", policy="prefetch-auto"),
    Namespace("auto-no-grant", policy="prefetch-auto-no-grant"),
    Namespace("auto-no-capability", policy="prefetch-auto-no-capability"),
    Namespace("registry-kserve-v013", policy="prefetch-registry", kserve="v0.13"),
    Namespace("nonroot-uid1010", policy="prefetch", kserve="v0.13-uid-1010"),
    Namespace("nonroot-fix-uid1010", policy="prefetch-uid", kserve="v0.13-uid-1010"),
    Namespace("ns-kserve-v014-uid1010", kserve="v0.14-uid-1010"),
    Namespace("kserve-v014-uid1010-only", kserve="v0.14-uid-1010"),
    Namespace("no-webhooks"),
    Namespace("load-with-policy", policy="prefetch", kserve="v0.13"),
    Namespace("load-kserve-only", kserve="v0.13"),
    Namespace("faults-kill", policy="prefetch-ignore", kserve="v0.13"),
    Namespace("faults-freeze", policy="prefetch-ignore", kserve="v0.13"),
]


def policy(name, namespace=None):
    return find_policy(POLICIES, name, namespace)
