//! The kwctl session files the e2e suite replays are readable by the in-repo host too.

use modelcar_prefetch_host::{session, workspace_root};

#[test]
fn every_session_file_parses() {
    let dir = workspace_root().join("e2e-tests/sessions");
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            let exchanges = session::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!exchanges.is_empty(), "{} has no exchange", path.display());
            assert!(
                exchanges.iter().all(|e| e.response.is_ok()),
                "{} records a failed call",
                path.display()
            );
            parsed += 1;
        }
    }
    assert!(parsed > 0, "no session file in {}", dir.display());
}
