//! End-to-end tests: the real docker CLI against a fresh berth-agent per test.

mod api_fuzz;
mod build;
mod buildkit;
mod compose;
mod compose_v2;
mod containers;
mod crash;
mod disk_full;
mod doctor;
mod edges;
mod exec;
mod files;
mod images;
mod load;
mod netconnect;
mod netvol;
mod network;
mod plugins;
mod registry_faults;
mod resources;
mod restart;
mod sandbox;
mod sdk;
mod sdk_python;
mod system;
mod volumes;
