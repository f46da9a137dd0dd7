//! A waPC host that runs the built policy module the way Kubewarden's policy server does,
//! for tests, benchmarks and the `modelcar-prefetch-run` CLI. Never part of the policy.

mod engine;
mod error;
mod evaluation;
mod host_table;
mod module_file;
mod policy;
pub mod report;
pub mod session;

use serde_json::Value;

pub use error::{HostError, REBUILD_COMMAND};
pub use evaluation::{Evaluation, SettingsVerdict};
pub use host_table::{HostCall, HostTable, KUBEWARDEN_BINDING};
pub use module_file::{
    MODULE_PATH_ENV, default_module_path, ensure_fresh, resolve_default_module, workspace_root,
};
pub use policy::Policy;

/// Reads `e2e-tests/fixtures/<name>.json`, panicking with the reason: a test cannot go on
/// without its input. `try_fixture` is the non-panicking form.
pub fn fixture(name: &str) -> Value {
    try_fixture(name).unwrap_or_else(|e| panic!("{e}"))
}

pub fn try_fixture(name: &str) -> Result<Value, HostError> {
    let path = workspace_root()
        .join("e2e-tests/fixtures")
        .join(format!("{name}.json"));
    read_json(&path)
}

/// Reads a JSON file (a request, a settings file).
pub fn read_json(path: &std::path::Path) -> Result<Value, HostError> {
    let text = std::fs::read_to_string(path).map_err(|source| HostError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| HostError::Input(format!("{} is not JSON: {e}", path.display())))
}
