//! berth-docker-api: Docker Engine API wire types (serde only, no I/O).

pub mod container;
pub mod volume;
