//! berth-host
