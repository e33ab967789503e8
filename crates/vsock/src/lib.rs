//! berth-vsock
