//! The host's way to reach a guest port, whatever carries it.

use std::future::Future;
use std::pin::Pin;

use crate::BoxIo;

/// Opens connections to guest vsock ports. Object safe so the host picks a transport at run time.
pub trait Connector: Send + Sync + 'static {
    fn connect(
        &self,
        port: u32,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<BoxIo>> + Send + '_>>;
}
