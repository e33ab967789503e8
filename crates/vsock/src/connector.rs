//! The host's way to reach a guest port, whatever carries it.

use std::future::Future;
use std::pin::Pin;

use crate::BoxIo;

/// A connection being opened.
pub type Connecting<'a> = Pin<Box<dyn Future<Output = std::io::Result<BoxIo>> + Send + 'a>>;

/// Opens connections to guest vsock ports. Object safe so the host picks a transport at run time.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, port: u32) -> Connecting<'_>;

    /// Opens channel `channel` of `port`, for a port whose streams are told apart by number
    /// (shared folder `n` on SHARE_PORT). Over vsock every connection is a new channel, so by
    /// default this is [`Self::connect`]; a transport with fixed channels (virtio-serial, one
    /// device per channel) overrides it.
    fn connect_channel(&self, port: u32, channel: u32) -> Connecting<'_> {
        let _ = channel;
        self.connect(port)
    }
}
