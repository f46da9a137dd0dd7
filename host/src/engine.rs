//! One wasmtime engine per process and one compiled module per file: compiling takes
//! seconds, instantiating takes microseconds, and tests and benchmarks load the same
//! module many times.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use wasmtime_provider::wasmtime::{Cache, CacheConfig, Config, Engine, Module};

use crate::{HostError, workspace_root};

#[derive(Clone, PartialEq)]
struct FileStamp {
    modified: SystemTime,
    len: u64,
}

type ModuleCache = Mutex<HashMap<PathBuf, (FileStamp, Module)>>;

pub(crate) fn engine() -> Result<&'static Engine, HostError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::default();
            config.cache(disk_cache());
            Engine::new(&config).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|message| HostError::Load {
            path: PathBuf::new(),
            message: message.clone(),
        })
}

/// Wasmtime's on-disk cache of compiled code, under cargo's target directory: every test
/// binary is its own process, and a debug-built cranelift takes seconds per compilation.
/// Without it (unwritable directory) modules are compiled each time, which is only slower.
fn disk_cache() -> Option<Cache> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let mut config = CacheConfig::new();
    config.with_directory(target.join("wasmtime-cache"));
    Cache::new(config).ok()
}

/// The compiled module for `path`, recompiled when the file changed since it was cached.
pub(crate) fn compiled_module(path: &Path) -> Result<Module, HostError> {
    static CACHE: OnceLock<ModuleCache> = OnceLock::new();
    let io_error = |source| HostError::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => HostError::ModuleMissing {
            path: path.to_path_buf(),
        },
        _ => io_error(source),
    })?;
    let stamp = FileStamp {
        modified: metadata.modified().map_err(io_error)?,
        len: metadata.len(),
    };
    let key = path.canonicalize().map_err(io_error)?;
    let cache = CACHE.get_or_init(Default::default);
    if let Some((cached_stamp, module)) = lock(cache).get(&key)
        && *cached_stamp == stamp
    {
        return Ok(module.clone());
    }
    let bytes = std::fs::read(path).map_err(io_error)?;
    let module = Module::new(engine()?, &bytes).map_err(|e| HostError::Load {
        path: path.to_path_buf(),
        message: format!("{e:#}"),
    })?;
    lock(cache).insert(key, (stamp, module.clone()));
    Ok(module)
}

// A panic while the lock was held leaves a map that is still consistent: keep using it.
fn lock(cache: &ModuleCache) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (FileStamp, Module)>> {
    cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
