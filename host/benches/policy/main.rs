//! `make bench`: the release policy module next to two baseline modules built for speed
//! from this repository (benches/baselines), measured by two instruments in one run:
//!
//! 1. the in-repo waPC host (wasmtime, as policy-server embeds it), every module in this
//!    process, samples interleaved across modules;
//! 2. `kwctl bench` (policy-evaluator, the library policy-server runs) when kwctl is on
//!    PATH: one `kwctl bench` per module and case, modules interleaved round by round.
//!
//! The floors: `parse-accept` parses the request with the SDK and accepts (the floor of
//! any policy); `mutate-label` parses it and returns the object with one label changed (the
//! floor of any mutation). Each case prints the policy's ratio to its floor, beside what
//! `accept-only` (accepts without reading the request) costs: the host's share.
//!
//! Environment:
//! - `MODELCAR_PREFETCH_WASM`: the policy module (default: `policy.wasm`, checked fresh);
//! - `BENCH_SAMPLES` (default 21) and `BENCH_SAMPLE_MS` (default 20): the waPC host's
//!   sample count and sample duration;
//! - `BENCH_KWCTL_ROUNDS` (default 3, 0 skips kwctl) and `BENCH_KWCTL_SECONDS` (default 1):
//!   kwctl rounds and each `kwctl bench`'s measurement time; `KWCTL` names the binary;
//! - `BENCH_VARIANTS=name=path,...`: more policy modules measured on every case (used to
//!   compare release-profile choices in one run).
//!
//! Arguments other than cargo's `--bench` filter the cases by name.

mod cases;
mod kwctl;
mod nodes;
mod report;
mod wapc;

use std::path::{Path, PathBuf};
use std::time::Duration;

use modelcar_prefetch_host::{Policy, resolve_default_module, workspace_root};

pub struct Module {
    pub name: String,
    pub path: PathBuf,
    /// A floor module: it reads no settings and calls no host capability.
    pub baseline: bool,
    pub policy: Policy,
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let samples = env_number("BENCH_SAMPLES", 21);
    let sample_time = Duration::from_millis(env_number("BENCH_SAMPLE_MS", 20).into());

    let nodes = wapc::Nodes::default();
    let module = |name: &str, path: PathBuf, baseline| Module {
        policy: wapc::load(name, &path, &nodes),
        name: name.to_owned(),
        path,
        baseline,
    };
    let policy_path = resolve_default_module().unwrap_or_else(|e| fail(&e.to_string()));
    let mut modules = vec![
        module("policy", policy_path, false),
        module("parse-accept", baseline("parse-accept"), true),
        module("mutate-label", baseline("mutate-label"), true),
        module("accept-only", baseline("accept-only"), true),
    ];
    for (name, path) in variants() {
        modules.push(module(&name, path, false));
    }

    let cases: Vec<cases::Case> = cases::all()
        .into_iter()
        .filter(|c| filter.is_empty() || filter.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    for case in &cases {
        nodes.serve(case);
        wapc::check_outcomes(case, &modules);
    }

    println!("machine: {}", report::machine());
    for m in &modules {
        println!(
            "module {:<14} {:>8} bytes  {}",
            m.name,
            std::fs::metadata(&m.path).map(|md| md.len()).unwrap_or(0),
            m.path.display()
        );
    }

    let times: Vec<Vec<Duration>> = cases
        .iter()
        .map(|case| {
            nodes.serve(case);
            wapc::measure(case, &modules, samples.into(), sample_time)
        })
        .collect();
    let mut missed = report::table(
        &format!(
            "in-repo waPC host (wasmtime): {samples} interleaved samples of ~{} ms per module \
             and case, median time per evaluation",
            sample_time.as_millis()
        ),
        &cases.iter().collect::<Vec<_>>(),
        &modules,
        &times,
    );

    match kwctl::Kwctl::find(env_number("BENCH_KWCTL_ROUNDS", 3)) {
        Ok(kwctl) => {
            let seconds = env_number("BENCH_KWCTL_SECONDS", 1);
            let cases: Vec<&cases::Case> =
                cases.iter().filter(|c| kwctl::Kwctl::measures(c)).collect();
            let times = kwctl.measure(&cases, &modules, seconds);
            let title = format!(
                "{}: {} interleaved rounds of one `kwctl bench` per module and case \
                 ({seconds} s each), mean time per evaluation",
                kwctl.version(),
                kwctl.rounds
            );
            missed.extend(
                report::table(&title, &cases, &modules, &times)
                    .into_iter()
                    .map(|c| format!("{c} (kwctl)")),
            );
        }
        Err(why) => println!("\nkwctl bench skipped: {why}"),
    }

    if missed.is_empty() {
        println!("\nevery case within its target");
    } else {
        println!("\nmissed targets: {}", missed.join(", "));
    }
}

/// `target/wasm32-wasip1/floor/<name>.wasm`, which `make bench` builds.
fn baseline(package: &str) -> PathBuf {
    let path = target_dir()
        .join("wasm32-wasip1/floor")
        .join(format!("{}.wasm", package.replace('-', "_")));
    if !path.exists() {
        fail(&format!(
            "baseline module {} is missing: build it with `cargo build --profile floor \
             --target wasm32-wasip1 -p {package}`, or run `make bench`",
            path.display()
        ));
    }
    path
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn variants() -> Vec<(String, PathBuf)> {
    let Ok(list) = std::env::var("BENCH_VARIANTS") else {
        return Vec::new();
    };
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|item| match item.split_once('=') {
            Some((name, path)) => (name.to_owned(), Path::new(path).to_path_buf()),
            None => fail(&format!("BENCH_VARIANTS entry {item:?} is not name=path")),
        })
        .collect()
}

pub fn fail(message: &str) -> ! {
    eprintln!("benchmark cannot run: {message}");
    std::process::exit(2)
}

fn env_number(name: &str, default: u16) -> u16 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| fail(&format!("{name}={v:?} is not a number"))),
        Err(_) => default,
    }
}
