use std::path::PathBuf;

/// The command that rebuilds the policy module; every "module unusable" error names it.
pub const REBUILD_COMMAND: &str = "make policy.wasm";

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("policy module {} does not exist: build it with `{REBUILD_COMMAND}`", path.display())]
    ModuleMissing { path: PathBuf },

    #[error(
        "policy module {} is older than {}: rebuild it with `{REBUILD_COMMAND}`",
        path.display(),
        newer_source.display()
    )]
    ModuleStale {
        path: PathBuf,
        newer_source: PathBuf,
    },

    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot load policy module {}: {message}", path.display())]
    Load { path: PathBuf, message: String },

    /// The guest returned a waPC error or trapped (a Rust panic in the policy is a trap).
    #[error("policy call `{operation}` failed: {message}")]
    Guest { operation: String, message: String },

    /// The guest answered, but not with what the Kubewarden protocol expects.
    #[error("policy call `{operation}` answered something unexpected: {message}")]
    Protocol { operation: String, message: String },

    #[error("invalid input: {0}")]
    Input(String),
}
