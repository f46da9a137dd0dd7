use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::HostError;

/// Overrides the module `Policy::load_default` loads.
pub const MODULE_PATH_ENV: &str = "MODELCAR_PREFETCH_WASM";

/// The cargo workspace root (the policy crate), whatever directory tests run from.
pub fn workspace_root() -> PathBuf {
    let host_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    host_dir.parent().unwrap_or(host_dir).to_path_buf()
}

pub fn default_module_path() -> PathBuf {
    workspace_root().join("policy.wasm")
}

/// The module `Policy::load_default` loads: `$MODELCAR_PREFETCH_WASM` as given, else the
/// workspace's `policy.wasm`, checked to be built from the current sources.
pub fn resolve_default_module() -> Result<PathBuf, HostError> {
    match std::env::var_os(MODULE_PATH_ENV) {
        Some(path) => Ok(PathBuf::from(path)),
        None => {
            let path = default_module_path();
            ensure_fresh(&path, &workspace_root())?;
            Ok(path)
        }
    }
}

/// Fails when `module` is missing, or older than a source it is built from under `root`
/// (`src/**`, `Cargo.toml`, `Cargo.lock`): testing a stale module would test old code.
pub fn ensure_fresh(module: &Path, root: &Path) -> Result<(), HostError> {
    let built = modified(module).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => HostError::ModuleMissing {
            path: module.to_path_buf(),
        },
        _ => HostError::Io {
            path: module.to_path_buf(),
            source,
        },
    })?;
    let mut sources = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    collect_files(&root.join("src"), &mut sources)?;
    for source in sources {
        let Ok(changed) = modified(&source) else {
            continue;
        };
        if changed > built {
            return Err(HostError::ModuleStale {
                path: module.to_path_buf(),
                newer_source: source,
            });
        }
    }
    Ok(())
}

fn modified(path: &Path) -> std::io::Result<SystemTime> {
    std::fs::metadata(path)?.modified()
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), HostError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(HostError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| HostError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
