//! End-to-end tests: the real docker CLI against a fresh berth-agent per test.

mod api_fuzz;
mod build;
mod buildkit;
mod compose;
mod compose_v2;
mod containers;
mod crash;
mod doctor;
mod exec;
mod files;
mod images;
mod netconnect;
mod netjoin;
mod netvol;
mod network;
mod plugins;
mod resources;
mod restart;
mod sandbox;
mod sdk;
mod sdk_python;
mod system;
mod volumes;
