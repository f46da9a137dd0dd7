"""Node objects of realistic size for the scale suite, created through the API as kubelets
create theirs (status included: the API server keeps a Node's status on create).

Shaped like the worker Nodes of a managed cluster (EKS with Karpenter, the NVIDIA GPU
operator's feature discovery): about 40 labels, the usual annotations, a providerID, a GPU
taint, capacity and allocatable, five conditions, addresses, nodeInfo and ~30 images with
their digests and tags. Most of a real Node's bytes are `status.images`: with them, and the
managedFields the API server adds, a Node is about 14 KB of JSON as the API server returns it,
the size measured on GPU clusters (issue 23: 69 MB for 5,000 Nodes). One Node in
`GPU_EVERY` is a GPU node (`nvidia.com/gpu.present=true`); the others are CPU nodes of the
same size (their images are application images instead of CUDA ones), so that a
`nodeLabelSelector` selects a fifth of the cluster."""

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

# New enough for native sidecars (1.29+), so `auto` must read every node before it decides.
KUBELET_NEW = "v1.33.5-eks-3025e55"
# What the CPU nodes are set back to for the nodeLabelSelector case: too old to veto.
KUBELET_OLD = "v1.28.15-eks-3025e55"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_SELECTOR = f"{GPU_LABEL}=true"
GPU_EVERY = 5
# The API server records this manager in managedFields, as it records the kubelet's.
FIELD_MANAGER = "kubelet"
CLIENTS = 8

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
HEARTBEAT = "2026-12-01T21:02:11Z"
JOINED = "2026-11-02T08:15:41Z"

GPU_IMAGES = (
    "docker.io/kserve/huggingfaceserver", "docker.io/vllm/vllm-openai",
    "nvcr.io/nvidia/tritonserver", "nvcr.io/nvidia/k8s-device-plugin",
    "nvcr.io/nvidia/k8s/dcgm-exporter", "nvcr.io/nvidia/gpu-feature-discovery",
    "nvcr.io/nvidia/k8s/container-toolkit", "nvcr.io/nvidia/cloud-native/gpu-operator-validator",
    "quay.io/example/models/llama-3.1-8b-instruct", "quay.io/example/models/mistral-7b-instruct",
    "quay.io/example/models/qwen2.5-7b-instruct", "ghcr.io/llm-d/llm-d",
    "nvcr.io/nvidia/cuda", "docker.io/kserve/storage-initializer",
)
CPU_IMAGES = (
    "docker.io/library/nginx", "docker.io/library/redis", "docker.io/bitnami/postgresql",
    "quay.io/prometheus/node-exporter", "quay.io/prometheus/prometheus",
    "docker.io/grafana/grafana", "docker.io/fluent/fluent-bit", "ghcr.io/example/checkout-api",
    "ghcr.io/example/orders-worker", "docker.io/kserve/kserve-controller",
    "docker.io/istio/proxyv2", "quay.io/jetstack/cert-manager-controller",
    "docker.io/apache/kafka", "ghcr.io/example/payments-gateway",
)
# The node's own daemons, on every node.
SYSTEM_IMAGES = (
    "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni",
    "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni-init",
    "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy",
    "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/coredns",
    "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/pod-identity-agent",
    "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver",
    "public.ecr.aws/eks-distro/kubernetes-csi/node-driver-registrar",
    "public.ecr.aws/eks-distro/kubernetes-csi/livenessprobe",
    "registry.k8s.io/nfd/node-feature-discovery",
    "public.ecr.aws/aws-observability/aws-for-fluent-bit",
    "public.ecr.aws/eks/aws-load-balancer-controller",
    "docker.io/amazon/aws-node-termination-handler",
    "public.ecr.aws/karpenter/controller",
    "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/pause",
    "public.ecr.aws/aws-ec2/aws-node-monitoring-agent",
    "quay.io/prometheus/node-exporter-sidecar",
)
# What node-feature-discovery records of the labels it set (the same on every node here).
NFD_FEATURES = ",".join([
    "cpu-cpuid.ADX", "cpu-cpuid.AESNI", "cpu-cpuid.AVX", "cpu-cpuid.AVX2", "cpu-cpuid.AVX512BW",
    "cpu-cpuid.AVX512CD", "cpu-cpuid.AVX512DQ", "cpu-cpuid.AVX512F", "cpu-cpuid.AVX512VL",
    "cpu-cpuid.FMA3", "cpu-cpuid.SHA", "cpu-cpuid.VAES", "cpu-hardware_multithreading",
    "cpu-model.family", "cpu-model.id", "cpu-model.vendor_id", "kernel-config.NO_HZ",
    "kernel-version.full", "kernel-version.major", "kernel-version.minor", "memory-numa",
    "pci-1d0f.present", "storage-nonrotationaldisk", "system-os_release.ID",
    "system-os_release.VERSION_ID",
])


def is_gpu(i):
    return i % GPU_EVERY == 0


def node_name(i):
    return f"ip-10-{i // 65536 % 256}-{i // 256 % 256}-{i % 256}.ec2.internal"


def _ip(i):
    return f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"


def _digest(i, k):
    # Distinct per node and image, and as random-looking as real digests.
    return hashlib.sha256(f"{i}/{k}".encode()).hexdigest()


def _labels(i, name, zone):
    gpu = is_gpu(i)
    instance = "p4d.24xlarge" if gpu else "m7i.8xlarge"
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": instance,
        "beta.kubernetes.io/os": "linux",
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "eks.amazonaws.com/nodegroup": "gpu-a100" if gpu else "cpu-general",
        "eks.amazonaws.com/nodegroup-image": "ami-0c5b2f4e1a9d3e7f8",
        "failure-domain.beta.kubernetes.io/region": "us-east-1",
        "failure-domain.beta.kubernetes.io/zone": zone,
        "k8s.io/cloud-provider-aws": "4f6c1e3b2a9d8c7e6f5a4b3c2d1e0f9a",
        "karpenter.k8s.aws/instance-category": "p" if gpu else "m",
        "karpenter.k8s.aws/instance-cpu": "96" if gpu else "32",
        "karpenter.k8s.aws/instance-family": "p4d" if gpu else "m7i",
        "karpenter.k8s.aws/instance-generation": "4" if gpu else "7",
        "karpenter.k8s.aws/instance-hypervisor": "nitro",
        "karpenter.k8s.aws/instance-memory": "1179648" if gpu else "131072",
        "karpenter.k8s.aws/instance-network-bandwidth": "400000" if gpu else "12500",
        "karpenter.k8s.aws/instance-size": "24xlarge" if gpu else "8xlarge",
        "karpenter.sh/capacity-type": "on-demand",
        "karpenter.sh/initialized": "true",
        "karpenter.sh/nodepool": "gpu" if gpu else "general",
        "karpenter.sh/registered": "true",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": instance,
        "topology.ebs.csi.aws.com/zone": zone,
        "topology.k8s.aws/zone-id": f"use1-az{ZONES.index(zone) + 1}",
        "topology.kubernetes.io/region": "us-east-1",
        "topology.kubernetes.io/zone": zone,
    }
    if gpu:
        labels.update({
            "karpenter.k8s.aws/instance-gpu-count": "8",
            "karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia",
            "karpenter.k8s.aws/instance-gpu-memory": "40960",
            "karpenter.k8s.aws/instance-gpu-name": "a100",
            "nvidia.com/cuda.driver.major": "550",
            "nvidia.com/cuda.driver.minor": "127",
            "nvidia.com/cuda.runtime.major": "12",
            "nvidia.com/gpu.count": "8",
            "nvidia.com/gpu.deploy.device-plugin": "true",
            "nvidia.com/gpu.family": "ampere",
            "nvidia.com/gpu.memory": "40960",
            GPU_LABEL: "true",
            "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
            "nvidia.com/mig.capable": "true",
        })
    else:
        labels.update({
            "karpenter.k8s.aws/instance-ebs-bandwidth": "10000",
            "karpenter.k8s.aws/instance-encryption-in-transit-supported": "true",
            "node.kubernetes.io/role": "worker",
            "workload.example.com/tier": "general",
            "feature.node.kubernetes.io/cpu-cpuid.AVX512F": "true",
            "feature.node.kubernetes.io/cpu-cpuid.AMXBF16": "true",
            "feature.node.kubernetes.io/cpu-hardware_multithreading": "true",
            "feature.node.kubernetes.io/kernel-version.major": "6",
            "feature.node.kubernetes.io/system-os_release.ID": "amzn",
            "feature.node.kubernetes.io/system-os_release.VERSION_ID": "2023",
            "feature.node.kubernetes.io/pci-1d0f.present": "true",
            "feature.node.kubernetes.io/storage-nonrotationaldisk": "true",
            "feature.node.kubernetes.io/network-sriov.capable": "true",
            "feature.node.kubernetes.io/memory-numa": "true",
        })
    return labels


def _resources(gpu, allocatable):
    if gpu:
        cpu, memory = ("95690m", "1157987420Ki") if allocatable else ("96", "1176821184Ki")
    else:
        cpu, memory = ("31850m", "127462412Ki") if allocatable else ("32", "130799612Ki")
    res = {
        "attachable-volumes-aws-ebs": "39",
        "cpu": cpu,
        "ephemeral-storage": "95551679124" if allocatable else "104845292Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": memory,
        "pods": "737" if gpu else "234",
    }
    if gpu:
        res["nvidia.com/gpu"] = "8"
        res["vpc.amazonaws.com/efa"] = "4"
    return res


def _conditions():
    def condition(kind, status, reason, message):
        return {"type": kind, "status": status, "lastHeartbeatTime": HEARTBEAT,
                "lastTransitionTime": JOINED, "reason": reason, "message": message}
    return [
        condition("KernelReady", "True", "KernelIsReady", "Monitoring for the Kernel system is "
                  "active"),
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                  "kubelet has sufficient memory available"),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                  "kubelet has no disk pressure"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID",
                  "kubelet has sufficient PID available"),
        condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]


def _images(i):
    """What the kubelet reports: each image by digest and by tag, largest first (as the
    kubelet sorts them); the node's daemons by digest and tag too."""
    workloads = GPU_IMAGES if is_gpu(i) else CPU_IMAGES
    images = []
    for k, repo in enumerate(workloads + SYSTEM_IMAGES):
        names = [f"{repo}@sha256:{_digest(i, k)}", f"{repo}:v{1 + k % 4}.{10 + k}.{i % 7}"]
        images.append({"names": names, "sizeBytes": 9_800_000_000 - k * 340_000_000 - i % 977})
    return images


def node(i, kubelet=KUBELET_NEW):
    """Node number `i` as its kubelet registers it."""
    name = node_name(i)
    zone = ZONES[i % 3]
    gpu = is_gpu(i)
    spec = {"providerID": f"aws:///{zone}/i-0{(i + 1) * 7919:016x}"}
    if gpu:
        spec["taints"] = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": _labels(i, name, zone),
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": _ip(i),
                "csi.volume.kubernetes.io/nodeid": json.dumps(
                    {"ebs.csi.aws.com": f"i-0{(i + 1) * 7919:016x}"}, separators=(",", ":")),
                "karpenter.k8s.aws/ec2nodeclass-hash": "13290342170289372718",
                "karpenter.k8s.aws/ec2nodeclass-hash-version": "v4",
                "karpenter.sh/nodepool-hash": "6821555240594823858",
                "karpenter.sh/nodepool-hash-version": "v3",
                "nfd.node.kubernetes.io/feature-labels": NFD_FEATURES,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "capacity": _resources(gpu, False),
            "allocatable": _resources(gpu, True),
            "conditions": _conditions(),
            "addresses": [
                {"type": "InternalIP", "address": _ip(i)},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": f"ec2{i:029x}",
                "systemUUID": f"ec2{i % 1_000_000:05x}-8c3a-1b7e-2f44-0a1b2c3d4e5f",
                "bootID": f"{i:08x}-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
                "kernelVersion": "6.1.115-126.197.amzn2023.x86_64",
                "osImage": "Amazon Linux 2023.6.20241121",
                "containerRuntimeVersion": "containerd://1.7.23",
                "kubeletVersion": kubelet,
                "kubeProxyVersion": kubelet,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": _images(i),
            "runtimeHandlers": [
                {"name": "nvidia" if gpu else "runc",
                 "features": {"recursiveReadOnlyMounts": True, "userNamespaces": True}},
                {"name": "", "features": {"recursiveReadOnlyMounts": True,
                                          "userNamespaces": True}},
            ],
            "features": {"supplementalGroupsPolicy": True},
        },
    }


def _in_parallel(work, items, clients=CLIENTS):
    """Runs `work(item)` from `clients` threads (each with its own connection, see Api);
    returns the errors, as strings."""
    def run(item):
        try:
            return work(item)
        except Exception as e:  # one failure should not hide how many there were
            return f"{item}: {e!r}"
    with ThreadPoolExecutor(max_workers=clients) as pool:
        return [e for e in pool.map(run, items) if e]


def create(api, count):
    """Creates nodes 0..count-1 with their status, as kubelets register; returns seconds."""
    def post(i):
        body = node(i)
        r = api.post(f"/api/v1/nodes?fieldManager={FIELD_MANAGER}", body)
        if r.status != 201:
            return f"node {body['metadata']['name']}: HTTP {r.status}: {str(r.body)[:300]}"
        return None
    start = time.monotonic()
    errors = _in_parallel(post, range(count))
    if errors:
        raise RuntimeError(f"{len(errors)} of {count} Node creates failed, first: {errors[0]}")
    return time.monotonic() - start


def set_kubelet(api, indices, version):
    """Sets the kubelet version of the nodes `indices` (their status subresource, as the
    kubelet updates it after an upgrade or a downgrade); returns seconds."""
    def patch(i):
        r = api.merge_patch(f"/api/v1/nodes/{node_name(i)}/status?fieldManager={FIELD_MANAGER}",
                            {"status": {"nodeInfo": {"kubeletVersion": version,
                                                     "kubeProxyVersion": version}}})
        return None if r.ok() else f"node {node_name(i)}: HTTP {r.status}: {str(r.body)[:300]}"
    indices = list(indices)
    start = time.monotonic()
    errors = _in_parallel(patch, indices)
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(indices)} kubelet updates failed, first: "
                           f"{errors[0]}")
    return time.monotonic() - start


def delete_all(api):
    """Deletes every Node (one DELETE of the collection) and waits until none is left."""
    api.must(api.request("DELETE", "/api/v1/nodes"), "delete the Nodes")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        left = api.must(api.get("/api/v1/nodes?limit=1"), "list Nodes")
        if not left["items"]:
            return
        time.sleep(0.5)
    raise RuntimeError("Nodes still listed 120 s after their deletion")


def stored_bytes(api, indices):
    """The JSON size of these Nodes as the API server returns them (compact JSON, with the
    managedFields it adds), averaged."""
    sizes = []
    for i in indices:
        stored = api.must(api.get(f"/api/v1/nodes/{node_name(i)}"), f"get {node_name(i)}")
        sizes.append(len(json.dumps(stored, separators=(",", ":")).encode()))
    return sum(sizes) / len(sizes)
