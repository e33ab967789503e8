//! berth-agent-proto: the host<->guest protocol of Berth's VM: vsock ports, control messages and
//! their framing. Shared by the host library and the guest agent; serde plus tokio's io traits.
//!
//! Three guest vsock ports, each carried by few long-lived connections (see `docs/design/host.md`):
//! - [`DOCKER_API_PORT`]: a stream multiplexer whose every stream is one Docker API connection;
//! - [`CONTROL_PORT`]: one connection of length-delimited JSON frames ([`frame`]), host
//!   [`HostFrame`] requests, guest [`GuestFrame`] replies and events;
//! - [`FORWARD_PORT`]: a stream multiplexer whose every stream starts with a [`ForwardHeader`]
//!   frame naming the guest port it tunnels to; a UDP stream then carries length-prefixed
//!   datagrams ([`datagram`]).

pub mod datagram;
pub mod frame;
pub mod host_path;
mod messages;

pub use datagram::{read_datagram, write_datagram, MAX_DATAGRAM};
pub use frame::{read_frame, write_frame, FrameError, MAX_FRAME};
pub use messages::*;

/// Guest vsock port on which the agent serves the Docker Engine API (multiplexed).
pub const DOCKER_API_PORT: u32 = 2375;
/// Guest vsock port of the versioned control protocol (hello, health, shutdown, time, ports, shares).
pub const CONTROL_PORT: u32 = 2376;
/// Guest vsock port for published-port tunnels (multiplexed, one stream per TCP connection).
pub const FORWARD_PORT: u32 = 2377;
/// Guest vsock port for shared folders over 9P: each connection starts with a [`ShareHeader`]
/// frame, then carries 9P2000.L, which the guest's kernel reads from the socket itself.
pub const SHARE_PORT: u32 = 2378;
/// Version of the control protocol, exchanged in the hello.
pub const PROTOCOL_VERSION: u32 = 1;
/// vsock CID of the host, the only peer the guest accepts.
pub const HOST_CID: u32 = 2;
