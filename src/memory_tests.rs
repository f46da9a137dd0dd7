//! Memory on the no-op path: the decision reads a handful of fields, so what it allocates
//! must not grow with the bytes of the object (serde skips what the view does not name,
//! and the strings it keeps are borrowed from the request). The mutating path parses the
//! whole pod and may grow with it; it is measured here too, to show that the counter sees
//! such growth.
//!
//! A counting global allocator (in the unit-test binary only) records, per thread, the
//! bytes allocated while the `validate` handler's evaluation and response (without its
//! log lines) run natively.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use serde_json::{Value, json};

struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn record_alloc(size: usize) {
    // `try_with`: allocations made while a thread is being torn down are not counted.
    let _ = ALLOCATED.try_with(|a| a.set(a.get() + size));
    let _ = LIVE.try_with(|l| {
        let live = l.get() + size;
        l.set(live);
        let _ = PEAK.try_with(|p| p.set(p.get().max(live)));
    });
}

fn record_dealloc(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(size)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record_dealloc(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record_alloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record_dealloc(layout.size());
        record_alloc(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug, Clone, Copy)]
struct Usage {
    /// Every byte handed out during the evaluation, freed or not.
    allocated: usize,
    /// The most bytes held at once during the evaluation, above what was live before.
    peak: usize,
}

/// Evaluates `payload` and returns what it allocated, and whether it mutated.
fn measure(payload: &[u8]) -> (Usage, bool) {
    let before_live = LIVE.with(Cell::get);
    ALLOCATED.with(|a| a.set(0));
    PEAK.with(|p| p.set(before_live));
    let response = crate::response::encode(&crate::admission::evaluate(payload));
    let usage = Usage {
        allocated: ALLOCATED.with(Cell::get),
        peak: PEAK.with(Cell::get) - before_live,
    };
    let response: Value = serde_json::from_slice(&response).expect("response JSON");
    assert_eq!(response["accepted"], json!(true), "{response}");
    assert!(
        response.get("warnings").is_none_or(Value::is_null),
        "{response}"
    );
    let mutated = response.get("mutated_object").is_some_and(|o| !o.is_null());
    (usage, mutated)
}

fn payload(kind: &str, operation: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "request": {
            "uid": "0b5e4ad3-1b8c-4a37-9df4-7d8f0e6a3c11",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object,
        },
        "settings": {}
    }))
    .unwrap()
}

/// A pod of `containers` containers padded with `padding` bytes of fields the decision
/// does not read (env values, labels, managed fields, a large annotation value), with the
/// KServe modelcar when `modelcar`, and an init container already pulling its image when
/// `pre_pulled` (the modelcar then first, with a postStart hook, as the policy leaves it).
fn pod(containers: usize, padding: usize, modelcar: bool, pre_pulled: bool) -> Value {
    let per_container = padding / 4 / containers.max(1);
    let filler = |n: usize| "v".repeat(n);
    let mut list: Vec<Value> = (0..containers)
        .map(|i| {
            json!({
                "name": format!("app-{i}"),
                "image": format!("registry.example.com/app-{i}:1.0"),
                "env": [{"name": "PADDING", "value": filler(per_container)}],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                // An escaped string: skipping it must not decode it.
                "args": ["--greeting=\"h\u{e9}llo\"\n"],
            })
        })
        .collect();
    if modelcar {
        let mut modelcar = json!({
            "name": "modelcar",
            "image": "quay.io/example/models-iris:v1",
            "args": ["sh", "-c", "ln -s /proc/$$$$/root/models /mnt/models && sleep infinity"],
        });
        if pre_pulled {
            // As this policy leaves it: first, with the hook that waits for its link.
            modelcar["lifecycle"] =
                json!({"postStart": {"exec": {"command": ["sh", "-c", "true"]}}});
            list.insert(0, modelcar);
        } else {
            list.push(modelcar);
        }
    }
    let init: Vec<Value> = if pre_pulled {
        vec![json!({"name": "modelcar-init", "image": "quay.io/example/models-iris:v1"})]
    } else {
        Vec::new()
    };
    let mut annotations = json!({"padding.example.com/value": filler(padding / 4)});
    if modelcar {
        annotations["internal.serving.kserve.io/storage-initializer-sourceuri"] =
            json!("oci://quay.io/example/models-iris:v1");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "iris-predictor-",
            "namespace": "models",
            "labels": {"padding": filler(padding / 4)},
            "annotations": annotations,
            "managedFields": [{"manager": "kube-controller-manager", "fieldsV1": {"f:padding": filler(padding / 4)}}],
        },
        "spec": {"containers": list, "initContainers": init, "volumes": []},
        "status": {}
    })
}

/// Payloads that are accepted unchanged, for a given amount of padding.
fn no_op_payloads(padding: usize) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "pod without modelcar",
            payload("Pod", "CREATE", pod(4, padding, false, false)),
        ),
        (
            "pre-pulled pod",
            payload("Pod", "CREATE", pod(4, padding, true, true)),
        ),
        (
            "pod UPDATE",
            payload("Pod", "UPDATE", pod(4, padding, true, false)),
        ),
        (
            "deployment CREATE",
            payload(
                "Deployment",
                "CREATE",
                json!({"spec": {"template": pod(4, padding, true, false)}}),
            ),
        ),
    ]
}

/// What the no-op path may allocate beyond the small object's figure when the object
/// grows 1,000-fold: nothing proportional, a little slack for the allocator's rounding.
const CONSTANT_SLACK: usize = 256;

#[test]
fn no_op_allocation_does_not_grow_with_the_object() {
    let small = no_op_payloads(1_000);
    let large = no_op_payloads(1_000_000);
    for ((name, small), (_, large)) in small.iter().zip(&large) {
        let (small_usage, small_mutated) = measure(small);
        let (large_usage, large_mutated) = measure(large);
        assert!(
            !small_mutated && !large_mutated,
            "{name}: expected no change"
        );
        eprintln!(
            "{name}: {} B payload {small_usage:?}, {} B payload {large_usage:?}",
            small.len(),
            large.len()
        );
        assert!(
            large.len() > 100 * small.len(),
            "{name}: the large payload must be far larger"
        );
        assert!(
            large_usage.allocated <= small_usage.allocated + CONSTANT_SLACK,
            "{name}: {} bytes payload allocated {} bytes, {} bytes payload {} bytes",
            small.len(),
            small_usage.allocated,
            large.len(),
            large_usage.allocated
        );
        assert!(
            large_usage.peak <= small_usage.peak + CONSTANT_SLACK,
            "{name}: peak {} bytes vs {} bytes",
            large_usage.peak,
            small_usage.peak
        );
        // A constant, and a small one: the envelope, the view, the settings, the answer.
        assert!(large_usage.allocated < 16 * 1024, "{name}: {large_usage:?}");
    }
}

/// The view holds one entry per container (its name and image, borrowed): a few dozen
/// bytes per container whatever the container's size, never a copy of it.
#[test]
fn no_op_allocation_per_container_is_a_small_constant() {
    let (few, _) = measure(&payload("Pod", "CREATE", pod(10, 100_000, false, false)));
    let (many, _) = measure(&payload("Pod", "CREATE", pod(1_000, 100_000, false, false)));
    let (many_large, _) = measure(&payload(
        "Pod",
        "CREATE",
        pod(1_000, 2_000_000, false, false),
    ));
    let per_container = (many.allocated - few.allocated) / 990;
    assert!(
        per_container <= 160,
        "{per_container} bytes per container ({few:?} vs {many:?})"
    );
    assert!(
        many_large.allocated <= many.allocated + CONSTANT_SLACK,
        "bigger containers must not cost more: {many:?} vs {many_large:?}"
    );
}

/// The counter sees object-sized allocation where there is some: the mutating path parses
/// the pod into a tree and serializes the answer.
#[test]
fn the_mutating_path_is_seen_to_grow() {
    let (small, small_mutated) = measure(&payload("Pod", "CREATE", pod(4, 1_000, true, false)));
    let (large, large_mutated) = measure(&payload("Pod", "CREATE", pod(4, 1_000_000, true, false)));
    assert!(small_mutated && large_mutated);
    assert!(
        large.allocated > small.allocated + 1_000_000,
        "{small:?} vs {large:?}"
    );
}

/// `auto` reads the Node list that policy-server 1.31 sends whole (about 10 KB per node):
/// what the read keeps is each node's name and kubelet version, never a tree of the list,
/// so a node's other bytes cost nothing.
#[test]
fn node_list_memory_does_not_grow_with_the_nodes_bytes() {
    let list = |padding: usize| {
        let items: Vec<Value> = (0..200)
            .map(|i| {
                json!({
                    "metadata": {"name": format!("gpu-node-{i:04}"), "labels": {"padding": "l".repeat(padding)}},
                    "status": {
                        "nodeInfo": {"kubeletVersion": "v1.31.4-eks-a737599", "osImage": "o".repeat(padding)},
                        "images": [{"names": ["i".repeat(padding)], "sizeBytes": 1_000_000_000u64}],
                    },
                })
            })
            .collect();
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "NodeList", "items": items}))
            .unwrap()
    };
    let count = |bytes: &[u8]| {
        ALLOCATED.with(|a| a.set(0));
        let nodes = crate::cluster::parse_node_list(bytes).expect("a Node list");
        assert_eq!(nodes.len(), 200);
        ALLOCATED.with(Cell::get)
    };
    let (slim, fat) = (list(10), list(10_000));
    assert!(fat.len() > 100 * slim.len());
    let (slim_allocated, fat_allocated) = (count(&slim), count(&fat));
    assert!(
        fat_allocated <= slim_allocated + CONSTANT_SLACK,
        "{} B list allocated {slim_allocated} B, {} B list {fat_allocated} B",
        slim.len(),
        fat.len()
    );
    // Names, versions and the vector that holds them (its growth counted): under 200
    // bytes a node, about 30 KB for 200 nodes and 0.8 MB for 5,000.
    assert!(
        slim_allocated < 200 * 200,
        "{slim_allocated} B for 200 nodes"
    );
}
