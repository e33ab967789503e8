//! berth-agent-proto: the host<->guest protocol of Berth's VM: vsock ports and control messages.
//! Serde-only leaf crate shared by the host library and the guest agent.

/// Guest vsock port on which the agent serves the Docker Engine API.
pub const DOCKER_API_PORT: u32 = 2375;
/// Guest vsock port of the versioned control protocol (hello, health, shutdown, time, ports, shares).
pub const CONTROL_PORT: u32 = 2376;
/// Version of the control protocol, exchanged in the hello.
pub const PROTOCOL_VERSION: u32 = 1;
