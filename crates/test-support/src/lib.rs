//! berth-test-support
