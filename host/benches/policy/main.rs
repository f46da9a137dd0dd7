//! `make bench`: the release policy module next to two baseline modules built from this
//! repository (benches/baselines), evaluated through the waPC host in one run.
//!
//! - `parse-accept` parses the request with the SDK and accepts: the floor of any policy;
//! - `mutate-label` parses it and returns the object with one label changed: the floor
//!   of any mutation.
//!
//! Samples of the modules are interleaved (policy, parse-accept, mutate-label, policy, ...)
//! so that load from other processes on the machine hits all of them alike; each figure is
//! the median time per evaluation over the samples. The payload is the compact JSON
//! policy-server sends: `{"request": <AdmissionRequest>, "settings": {}}`.
//!
//! Environment:
//! - `MODELCAR_PREFETCH_WASM`: the policy module (default: `policy.wasm`, checked fresh);
//! - `BENCH_SAMPLES` (default 21) and `BENCH_SAMPLE_MS` (default 20): sample count and
//!   target duration of one sample;
//! - `BENCH_VARIANTS=name=path,...`: more policy modules measured on every case (used to
//!   compare release-profile choices in one run).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use modelcar_prefetch_host::{HostTable, Policy, fixture, resolve_default_module, workspace_root};
use serde_json::{Value, json};

/// Policy-server's default evaluation timeout.
const BUDGET: Duration = Duration::from_secs(2);
const NO_OP_TARGET: f64 = 0.8;
const MUTATION_TARGET: f64 = 1.1;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Accepted unchanged: compared with the parse floor.
    NoOp,
    /// Mutated: compared with the mutation floor.
    Mutating,
}

struct Case {
    name: &'static str,
    kind: Kind,
    /// A robustness limit: reported against policy-server's budget too.
    limit: bool,
    payload: Vec<u8>,
}

struct Module {
    name: String,
    path: PathBuf,
    policy: Policy,
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter on case names.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let samples = env_number("BENCH_SAMPLES", 21);
    let sample_time = Duration::from_millis(env_number("BENCH_SAMPLE_MS", 20) as u64);

    let policy_path = resolve_default_module().unwrap_or_else(|e| fail(&e.to_string()));
    let mut modules = vec![
        load("policy", &policy_path),
        load("parse-accept", &baseline("parse-accept")),
        load("mutate-label", &baseline("mutate-label")),
    ];
    for (name, path) in variants() {
        modules.push(load(&name, &path));
    }

    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| filter.is_empty() || filter.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    for case in &cases {
        check_outcomes(case, &modules);
    }

    println!("machine: {} cores, {}", cores(), cpu_model());
    for m in &modules {
        println!(
            "module {:<14} {:>8} bytes  {}",
            m.name,
            std::fs::metadata(&m.path).map(|md| md.len()).unwrap_or(0),
            m.path.display()
        );
    }
    println!(
        "{samples} interleaved samples of ~{} ms per module and case; median time per evaluation\n",
        sample_time.as_millis()
    );

    let mut header = format!(
        "{:<34} {:>9} {:>12} {:>12} {:>12} {:>8}",
        "case", "payload", "policy", "parse-accept", "mutate-label", "ratio"
    );
    for m in &modules[3..] {
        header.push_str(&format!(" {:>16}", m.name));
    }
    println!("{header}  target");
    let mut missed = Vec::new();
    let mut limits = Vec::new();
    for case in &cases {
        let times = measure(case, &modules, samples, sample_time);
        let floor = match case.kind {
            Kind::NoOp => times[1],
            Kind::Mutating => times[2],
        };
        let (target, floor_name) = match case.kind {
            Kind::NoOp => (NO_OP_TARGET, "parse"),
            Kind::Mutating => (MUTATION_TARGET, "mutation"),
        };
        let ratio = times[0].as_secs_f64() / floor.as_secs_f64();
        let mut line = format!(
            "{:<34} {:>9} {:>12} {:>12} {:>12} {:>7.2}x",
            case.name,
            size(case.payload.len()),
            time(times[0]),
            time(times[1]),
            time(times[2]),
            ratio
        );
        for t in &times[3..] {
            line.push_str(&format!(
                " {:>8} {:>6.2}x",
                time(*t),
                t.as_secs_f64() / floor.as_secs_f64()
            ));
        }
        let verdict = if ratio <= target { "ok" } else { "MISSED" };
        println!("{line}  <= {target}x {floor_name} floor: {verdict}");
        if ratio > target {
            missed.push(case.name);
        }
        if case.limit {
            limits.push((case.name, times[0]));
        }
    }
    if !limits.is_empty() {
        println!(
            "\nlimits against policy-server's {} s budget:",
            BUDGET.as_secs()
        );
        for (name, t) in limits {
            println!(
                "{:<34} {:>12}  {:.3}% of the budget",
                name,
                time(t),
                100.0 * t.as_secs_f64() / BUDGET.as_secs_f64()
            );
        }
    }
    if missed.is_empty() {
        println!("\nevery case within its target");
    } else {
        println!("\nmissed targets: {}", missed.join(", "));
    }
}

fn load(name: &str, path: &Path) -> Module {
    let policy = Policy::load(path, HostTable::new())
        .unwrap_or_else(|e| fail(&format!("cannot load the {name} module: {e}")));
    Module {
        name: name.to_owned(),
        path: path.to_path_buf(),
        policy,
    }
}

/// `target/wasm32-wasip1/release/<name>.wasm`, which `make bench` builds.
fn baseline(package: &str) -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target_dir
        .join("wasm32-wasip1/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    if !path.exists() {
        fail(&format!(
            "baseline module {} is missing: build it with `cargo build --release --target \
             wasm32-wasip1 -p {package}`, or run `make bench`",
            path.display()
        ));
    }
    path
}

fn variants() -> Vec<(String, PathBuf)> {
    let Ok(list) = std::env::var("BENCH_VARIANTS") else {
        return Vec::new();
    };
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|item| match item.split_once('=') {
            Some((name, path)) => (name.to_owned(), PathBuf::from(path)),
            None => fail(&format!("BENCH_VARIANTS entry {item:?} is not name=path")),
        })
        .collect()
}

fn fail(message: &str) -> ! {
    eprintln!("benchmark cannot run: {message}");
    std::process::exit(2)
}

fn env_number(name: &str, default: u32) -> u32 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| fail(&format!("{name}={v:?} is not a number"))),
        Err(_) => default,
    }
}

fn payload(request: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"request": request, "settings": {}})).expect("JSON")
}

fn cases() -> Vec<Case> {
    let case = |name, kind, limit, request: Value| Case {
        name,
        kind,
        limit,
        payload: payload(&request),
    };
    vec![
        case(
            "kserve v0.13 modelcar (mutated)",
            Kind::Mutating,
            false,
            fixture("kserve-predictor-v0.13-modelcar"),
        ),
        case(
            "kserve v0.14 pre-pulled (no-op)",
            Kind::NoOp,
            false,
            fixture("kserve-predictor-v0.14-modelcar-init"),
        ),
        case(
            "pod without modelcar (no-op)",
            Kind::NoOp,
            false,
            fixture("pod-without-modelcar"),
        ),
        case(
            "deployment CREATE (no-op)",
            Kind::NoOp,
            false,
            fixture("deployment-create"),
        ),
        case(
            "pod UPDATE (no-op)",
            Kind::NoOp,
            false,
            fixture("kserve-predictor-update"),
        ),
        case(
            "50 containers, ~100 KB (no-op)",
            Kind::NoOp,
            false,
            large_pod(50, 40, false),
        ),
        case(
            "1,000 containers (no-op)",
            Kind::NoOp,
            true,
            large_pod(1000, 2, false),
        ),
        case(
            "1,000 containers (mutated)",
            Kind::Mutating,
            true,
            large_pod(1000, 2, true),
        ),
        case(
            "1 MB of annotations (no-op)",
            Kind::NoOp,
            true,
            annotated_pod(1 << 20, false),
        ),
        case(
            "1 MB of annotations (mutated)",
            Kind::Mutating,
            true,
            annotated_pod(1 << 20, true),
        ),
    ]
}

/// The plain pod fixture with `containers` application containers of `env` variables
/// each; with `modelcar`, KServe's modelcar container comes last.
fn large_pod(containers: usize, env: usize, modelcar: bool) -> Value {
    let mut request = fixture("pod-without-modelcar");
    let template = request["object"]["spec"]["containers"][0].clone();
    let list: Vec<Value> = (0..containers)
        .map(|i| {
            let mut c = template.clone();
            c["name"] = json!(format!("app-{i}"));
            c["image"] = json!(format!("registry.example.com/team/app-{i}:1.{i}.0"));
            c["env"] = json!(
                (0..env)
                    .map(|j| json!({"name": format!("SETTING_{j}"), "value": format!("value-{i}-{j}-abcdefghij")}))
                    .collect::<Vec<_>>()
            );
            c
        })
        .chain(modelcar.then(|| {
            json!({"name": "modelcar", "image": "quay.io/example/models-iris:v1",
                   "args": ["sh", "-c", "ln -s /proc/$$$$/root/models /mnt/ && sleep infinity"]})
        }))
        .collect();
    request["object"]["spec"]["containers"] = Value::Array(list);
    request
}

/// The plain pod fixture with `bytes` of annotations (1 KB values); with `modelcar`, it
/// also carries KServe's modelcar container.
fn annotated_pod(bytes: usize, modelcar: bool) -> Value {
    let mut request = large_pod(1, 2, modelcar);
    let annotations = request["object"]["metadata"]["annotations"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut annotations = annotations;
    let value = "x".repeat(1000);
    for i in 0..bytes / 1024 {
        annotations.insert(
            format!("bench.example.com/annotation-{i}"),
            json!(value.clone()),
        );
    }
    request["object"]["metadata"]["annotations"] = Value::Object(annotations);
    request
}

/// Every module must give the expected answer before it is timed: a benchmark of the
/// wrong outcome measures nothing.
fn check_outcomes(case: &Case, modules: &[Module]) {
    for m in modules {
        let raw = m
            .policy
            .call_raw("validate", &case.payload)
            .unwrap_or_else(|e| fail(&format!("{} on {:?}: {e}", m.name, case.name)));
        let response: Value = serde_json::from_slice(&raw).expect("response JSON");
        let mutated = response.get("mutated_object").is_some_and(|o| !o.is_null());
        let expected = match m.name.as_str() {
            "parse-accept" => false,
            "mutate-label" => true,
            _ => case.kind == Kind::Mutating,
        };
        if response["accepted"] != json!(true)
            || mutated != expected
            || response.get("warnings").is_some_and(|w| !w.is_null())
        {
            fail(&format!(
                "{} on {:?} answered {}",
                m.name,
                case.name,
                truncate(&String::from_utf8_lossy(&raw))
            ));
        }
        m.policy.clear_records();
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Median time per evaluation for each module, samples interleaved across modules.
fn measure(case: &Case, modules: &[Module], samples: u32, sample_time: Duration) -> Vec<Duration> {
    let call = |m: &Module| {
        let out = m
            .policy
            .call_raw("validate", &case.payload)
            .expect("validate");
        std::hint::black_box(out);
    };
    // Warm up, and find how many evaluations fill one sample.
    let iterations: Vec<u32> = modules
        .iter()
        .map(|m| {
            for _ in 0..3 {
                call(m);
            }
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < sample_time / 2 {
                call(m);
                n += 1;
            }
            let per_call = start.elapsed() / n;
            (sample_time.as_nanos() / per_call.as_nanos().max(1)).clamp(1, 1_000_000) as u32
        })
        .collect();
    let mut per_module: Vec<Vec<Duration>> = vec![Vec::new(); modules.len()];
    for _ in 0..samples {
        for (i, m) in modules.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..iterations[i] {
                call(m);
            }
            per_module[i].push(start.elapsed() / iterations[i]);
            m.policy.clear_records();
        }
    }
    per_module
        .into_iter()
        .map(|mut v| {
            v.sort();
            v[v.len() / 2]
        })
        .collect()
}

fn time(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.2} MB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}
