//! Node lists as `kubernetes/list_resources_all` answers them when the field masks are not
//! applied (policy-server and kwctl 1.31): whole Node objects, shaped like a GPU node in a
//! managed cluster. Most of a real Node's bytes are `status.images` (the kubelet reports up
//! to 50 images, each with its digests and tags), then labels and conditions: about 10 KB
//! per node here, as measured on such clusters.

use serde_json::{Value, json};

/// The kubelet every generated node reports: new enough for native sidecars, so the policy
/// must read the whole list before it decides.
pub const KUBELET_VERSION: &str = "v1.31.4-eks-a737599";

/// `{"apiVersion":"v1","kind":"NodeList",...}` with `count` nodes, serialized once.
pub fn node_list(count: usize) -> Vec<u8> {
    let list = json!({
        "apiVersion": "v1",
        "kind": "NodeList",
        "metadata": {"resourceVersion": "48213377"},
        "items": (0..count).map(node).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&list).expect("a Node list serializes")
}

fn node(i: usize) -> Value {
    let name = format!(
        "ip-10-{}-{}-{}.ec2.internal",
        i / 65536 % 256,
        i / 256 % 256,
        i % 256
    );
    let zone = ["us-east-1a", "us-east-1b", "us-east-1c"][i % 3];
    json!({
        "metadata": {
            "name": name,
            "uid": format!("5b1e8a3c-{:04x}-4f1e-9a7b-{:012x}", i % 65536, i),
            "resourceVersion": format!("{}", 48_000_000 + i),
            "creationTimestamp": "2026-11-02T08:14:55Z",
            "labels": labels(&name, zone),
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256),
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "nfd.node.kubernetes.io/feature-labels": "cpu-cpuid.ADX,cpu-cpuid.AESNI,cpu-cpuid.AVX,cpu-cpuid.AVX2,cpu-cpuid.AVX512BW,cpu-cpuid.AVX512CD,cpu-cpuid.AVX512DQ,cpu-cpuid.AVX512F,cpu-cpuid.AVX512VL,cpu-cpuid.FMA3,cpu-hardware_multithreading,kernel-version.full,nvidia.com/gpu.present,pci-10de.present,system-os_release.ID,system-os_release.VERSION_ID",
                "nfd.node.kubernetes.io/master.version": "v0.16.6",
            },
            "managedFields": [{
                "manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                "time": "2026-11-30T21:02:11Z", "fieldsType": "FieldsV1", "subresource": "status",
                "fieldsV1": {"f:status": {"f:conditions": {}, "f:images": {}, "f:nodeInfo": {}}},
            }],
        },
        "spec": {
            "providerID": format!("aws:///{zone}/i-0{:016x}", i * 7919),
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        },
        "status": {
            "capacity": resources("8", "192", "1055762868Ki", "500"),
            "allocatable": resources("8", "191450m", "1045379508Ki", "500"),
            "conditions": conditions(),
            "addresses": [
                {"type": "InternalIP", "address": format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": format!("ec2{:029x}", i),
                "systemUUID": format!("ec2{:05x}-8c3a-1b7e-2f44-0a1b2c3d4e5f", i % 1_000_000),
                "bootID": format!("{:08x}-1c2d-4e5f-8a9b-0c1d2e3f4a5b", i),
                "kernelVersion": "6.1.115-126.197.amzn2023.x86_64",
                "osImage": "Amazon Linux 2023.6.20241121",
                "containerRuntimeVersion": "containerd://1.7.23",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": images(i),
        },
    })
}

fn labels(name: &str, zone: &str) -> Value {
    json!({
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "p4d.24xlarge",
        "beta.kubernetes.io/os": "linux",
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "eks.amazonaws.com/nodegroup": "gpu-a100",
        "eks.amazonaws.com/nodegroup-image": "ami-0c5b2f4e1a9d3e7f8",
        "failure-domain.beta.kubernetes.io/region": "us-east-1",
        "failure-domain.beta.kubernetes.io/zone": zone,
        "k8s.io/cloud-provider-aws": "4f6c1e3b2a9d8c7e6f5a4b3c2d1e0f9a",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "p4d.24xlarge",
        "nvidia.com/cuda.driver.major": "550",
        "nvidia.com/cuda.driver.minor": "127",
        "nvidia.com/cuda.driver.rev": "05",
        "nvidia.com/cuda.runtime.major": "12",
        "nvidia.com/cuda.runtime.minor": "4",
        "nvidia.com/gfd.timestamp": "1764720000",
        "nvidia.com/gpu.compute.major": "8",
        "nvidia.com/gpu.compute.minor": "0",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.deploy.container-toolkit": "true",
        "nvidia.com/gpu.deploy.dcgm-exporter": "true",
        "nvidia.com/gpu.deploy.device-plugin": "true",
        "nvidia.com/gpu.deploy.driver": "pre-installed",
        "nvidia.com/gpu.family": "ampere",
        "nvidia.com/gpu.machine": "p4d.24xlarge",
        "nvidia.com/gpu.memory": "40960",
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/mig.capable": "true",
        "nvidia.com/mig.strategy": "single",
        "topology.ebs.csi.aws.com/zone": zone,
        "topology.kubernetes.io/region": "us-east-1",
        "topology.kubernetes.io/zone": zone,
    })
}

fn resources(cpu_gpu: &str, cpu: &str, memory: &str, storage_gi: &str) -> Value {
    json!({
        "attachable-volumes-aws-ebs": "39",
        "cpu": cpu,
        "ephemeral-storage": format!("{storage_gi}Gi"),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": memory,
        "nvidia.com/gpu": cpu_gpu,
        "pods": "737",
        "vpc.amazonaws.com/efa": "4",
    })
}

fn conditions() -> Value {
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": kind, "status": status,
            "lastHeartbeatTime": "2026-12-01T21:02:11Z",
            "lastTransitionTime": "2026-11-02T08:15:41Z",
            "reason": reason, "message": message,
        })
    };
    json!([
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

/// What the kubelet reports of the images on a GPU node: model servers, model images,
/// CUDA runtimes and the node's daemons, each by digest and by tag.
fn images(i: usize) -> Value {
    const REPOS: [&str; 12] = [
        "docker.io/kserve/huggingfaceserver",
        "docker.io/vllm/vllm-openai",
        "nvcr.io/nvidia/tritonserver",
        "nvcr.io/nvidia/k8s-device-plugin",
        "nvcr.io/nvidia/k8s/dcgm-exporter",
        "nvcr.io/nvidia/gpu-feature-discovery",
        "quay.io/example/models/llama-3-8b-instruct",
        "quay.io/example/models/mistral-7b-instruct",
        "602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni",
        "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy",
        "registry.k8s.io/nfd/node-feature-discovery",
        "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver",
    ];
    let list: Vec<Value> = (0..24)
        .map(|k| {
            let repo = REPOS[k % REPOS.len()];
            let digest = format!("{:064x}", (i as u128 + 1) * 0x9e37_79b9_7f4a_7c15 + k as u128);
            json!({
                "names": [format!("{repo}@sha256:{digest}"), format!("{repo}:v0.{}.{}", 10 + k, i % 7)],
                "sizeBytes": 1_000_000_000u64 + (k as u64) * 73_000_000 + i as u64,
            })
        })
        .collect();
    Value::Array(list)
}
