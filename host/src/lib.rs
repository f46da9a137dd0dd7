//! waPC host for tests (see README).
