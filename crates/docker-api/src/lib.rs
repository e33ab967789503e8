//! berth-docker-api: Docker Engine API wire types (v1.50), serde only, no I/O.

pub mod network;
