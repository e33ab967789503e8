//! berth-docker-api: Docker Engine API wire types (serde only, no I/O).

pub mod auth;
pub mod container;
pub mod files;
pub mod image;
pub mod network;
pub mod progress;
pub mod stats;
pub mod volume;
