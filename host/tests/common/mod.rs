use modelcar_prefetch_host::Policy;

/// The built policy; fails the test with the rebuild command when it is missing or stale.
pub fn policy() -> Policy {
    Policy::load_default().unwrap_or_else(|e| panic!("{e}"))
}
