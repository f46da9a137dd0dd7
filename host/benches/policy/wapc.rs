//! The in-repo instrument: every module in one process through the waPC host (wasmtime,
//! as policy-server embeds it), samples interleaved across modules, median per evaluation.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use modelcar_prefetch_host::{HostTable, Policy};
use serde_json::Value;

use crate::Module;
use crate::cases::{Case, Kind};
use crate::fail;

/// The Node list every loaded module is answered with; the benchmark sets it per case.
#[derive(Clone, Default)]
pub struct Nodes(Arc<Mutex<Option<Arc<Vec<u8>>>>>);

impl Nodes {
    pub fn serve(&self, case: &Case) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = case.nodes.clone();
    }

    fn host_table(&self) -> HostTable {
        let nodes = self.clone();
        HostTable::new().answer_bytes("kubernetes", "list_resources_all", move |_| {
            let current = nodes.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
            current
                .map(|list| list.as_ref().clone())
                .ok_or_else(|| "this case lists no Nodes".to_owned())
        })
    }
}

pub fn load(name: &str, path: &Path, nodes: &Nodes) -> Policy {
    Policy::load(path, nodes.host_table())
        .unwrap_or_else(|e| fail(&format!("cannot load the {name} module: {e}")))
}

/// Every module must give the expected answer before it is timed: a benchmark of the
/// wrong outcome measures nothing.
pub fn check_outcomes(case: &Case, modules: &[Module]) {
    for m in modules {
        let raw = m
            .policy
            .call_raw("validate", &case.payload(m.baseline))
            .unwrap_or_else(|e| fail(&format!("{} on {:?}: {e}", m.name, case.name)));
        let response: Value = serde_json::from_slice(&raw).expect("response JSON");
        let mutated = response.get("mutated_object").is_some_and(|o| !o.is_null());
        let expected = if m.baseline {
            m.name == "mutate-label"
        } else {
            case.kind == Kind::Mutating
        };
        if response["accepted"] != Value::Bool(true)
            || mutated != expected
            || response.get("warnings").is_some_and(|w| !w.is_null())
        {
            let text: String = String::from_utf8_lossy(&raw).chars().take(300).collect();
            fail(&format!("{} on {:?} answered {text}", m.name, case.name));
        }
        m.policy.clear_records();
    }
}

/// Median time per evaluation for each module, samples interleaved across modules.
pub fn measure(
    case: &Case,
    modules: &[Module],
    samples: u32,
    sample_time: Duration,
) -> Vec<Duration> {
    let payloads: Vec<Vec<u8>> = modules.iter().map(|m| case.payload(m.baseline)).collect();
    let call = |i: usize| {
        let out = modules[i]
            .policy
            .call_raw("validate", &payloads[i])
            .expect("validate");
        std::hint::black_box(out);
    };
    // Warm up, and find how many evaluations fill one sample.
    let iterations: Vec<u32> = (0..modules.len())
        .map(|i| {
            for _ in 0..3 {
                call(i);
            }
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < sample_time / 2 {
                call(i);
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
                call(i);
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
