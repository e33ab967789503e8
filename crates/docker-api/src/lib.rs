//! berth-docker-api: Docker Engine API wire types (serde only, no I/O).

pub mod auth;
pub mod image;
pub mod progress;
