//! berth-vsock: byte streams between the host and Berth's VM.
//!
//! - [`Connector`]: how the host reaches a guest vsock port. [`HybridConnector`] speaks the
//!   hybrid `CONNECT <port>` protocol over vhost-device-vsock's unix socket (this machine, no
//!   `/dev/vhost-vsock`); [`VsockConnector`] uses AF_VSOCK directly (kernel vhost-vsock hosts);
//!   [`UnixDirConnector`] maps ports to unix sockets for tests without a VM, and
//!   [`MemoryConnector`] to in-process streams (tests on every platform). The unix-socket
//!   connectors exist on unix only.
//! - [`VsockListener`]: the guest's AF_VSOCK listener, which can insist on the host's CID.
//! - [`mux`]: many logical streams over one long-lived connection (yamux), because
//!   vhost-device-vsock 0.3.0 drops connections under open/close churn.

#[cfg(target_os = "linux")]
mod af_vsock;
mod connector;
#[cfg(unix)]
mod hybrid;
mod memory;
pub mod mux;
#[cfg(unix)]
mod unix_dir;

use tokio::io::{AsyncRead, AsyncWrite};

#[cfg(target_os = "linux")]
pub use af_vsock::{VsockConnector, VsockListener, VsockStream};
pub use connector::{Connecting, Connector};
#[cfg(unix)]
pub use hybrid::{serve as serve_hybrid, HybridConnector};
pub use memory::MemoryConnector;
#[cfg(unix)]
pub use unix_dir::UnixDirConnector;

/// A bidirectional byte stream with half-close (`shutdown` ends our direction only).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`], what connectors return.
pub type BoxIo = Box<dyn Io>;

/// vsock CID meaning "any" when binding.
pub const CID_ANY: u32 = u32::MAX;
