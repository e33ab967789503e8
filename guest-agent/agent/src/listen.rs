//! API listeners named by `-H`:
//! - `unix:///path`: HTTP on a unix socket (mode 0660);
//! - `vsock://:PORT`: the VM's Docker API port; every connection (from the host, CID 2 only)
//!   is a yamux multiplexer whose streams are HTTP connections. When the VM has the
//!   virtio-serial port `berth.PORT` (QEMU on Windows hosts, [`crate::virtio_port`]) that port
//!   is served instead, one stream at a time;
//! - `mux+unix:///path`: the same multiplexer on a unix socket (tests and native mode);
//! - `tcp://ADDR:PORT`: plain HTTP on TCP, only when asked and only on a loopback address.
//!   The API is root-equivalent and berth-agent has no TLS client verification
//!   (`--tlsverify`): a non-loopback address is refused at start, where dockerd only warns and
//!   waits before serving anyone on the network as root.
//!
//! The control and port-forward endpoints (`control/`) use the same [`Endpoint`] forms.

use std::path::PathBuf;

use anyhow::{bail, Context};
use axum::Router;
use berth_vsock::BoxIo;
use futures::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A place to accept byte streams.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Endpoint {
    Unix(PathBuf),
    Vsock(u32),
    Tcp(std::net::SocketAddr),
}

impl Endpoint {
    /// Parses `unix:///path` or `vsock://:PORT` (also `vsock://PORT`).
    pub(crate) fn parse(s: &str) -> anyhow::Result<Self> {
        if let Some(p) = s.strip_prefix("unix://") {
            return Ok(Self::Unix(PathBuf::from(p)));
        }
        if let Some(p) = s.strip_prefix("vsock://") {
            let port = p.trim_start_matches(':');
            let port = port
                .parse()
                .with_context(|| format!("invalid vsock port in {s}"))?;
            return Ok(Self::Vsock(port));
        }
        if let Some(a) = s.strip_prefix("tcp://") {
            return Ok(Self::Tcp(loopback_tcp(a)?));
        }
        bail!("unsupported endpoint {s}: use unix:///path, vsock://:PORT or tcp://127.0.0.1:PORT")
    }

    pub(crate) fn is_vsock(&self) -> bool {
        matches!(self, Self::Vsock(_))
    }

    /// Binds; vsock endpoints accept only the host (CID 2), or are the VM's virtio-serial port
    /// of the same number when it has one.
    pub(crate) fn bind(&self) -> anyhow::Result<Acceptor> {
        if let Self::Vsock(port) = self {
            use crate::virtio_port::{
                device, ports_announced, settle, DEV, SETTLE_WITHIN, SYS_CLASS,
            };
            settle(ports_announced(), SYS_CLASS.as_ref(), SETTLE_WITHIN);
            if let Some(dev) = device(SYS_CLASS.as_ref(), DEV.as_ref(), *port) {
                tracing::info!(port, device = %dev.display(), "guest port over virtio-serial");
                return Ok(Acceptor::Port(crate::virtio_port::PortListener::new(dev)));
            }
        }
        match self {
            Self::Unix(path) => Ok(Acceptor::Unix(
                berth_server::serve::bind_unix(path, 0o660)
                    .with_context(|| format!("failed to listen on {}", path.display()))?,
            )),
            Self::Tcp(addr) => {
                let l = std::net::TcpListener::bind(addr)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .and_then(tokio::net::TcpListener::from_std)
                    .with_context(|| format!("failed to listen on tcp://{addr}"))?;
                tracing::warn!(%addr, "API on TCP without TLS: any local user can reach it");
                Ok(Acceptor::Tcp(l))
            }
            Self::Vsock(port) => Ok(Acceptor::Vsock(
                berth_vsock::VsockListener::bind(
                    berth_vsock::CID_ANY,
                    *port,
                    Some(berth_agent_proto::HOST_CID),
                )
                .with_context(|| format!("failed to listen on vsock port {port}"))?,
            )),
        }
    }
}

/// A bound endpoint.
pub(crate) enum Acceptor {
    Unix(tokio::net::UnixListener),
    Vsock(berth_vsock::VsockListener),
    Port(crate::virtio_port::PortListener),
    Tcp(tokio::net::TcpListener),
}

impl Acceptor {
    pub(crate) async fn accept(&self) -> std::io::Result<BoxIo> {
        match self {
            Self::Unix(l) => Ok(Box::new(l.accept().await?.0)),
            Self::Vsock(l) => Ok(Box::new(l.accept().await?.0)),
            Self::Port(l) => Ok(Box::new(l.accept().await?)),
            Self::Tcp(l) => Ok(Box::new(l.accept().await?.0)),
        }
    }

    /// Accepts until `cancel` fires, running `handle` on its own task per connection.
    pub(crate) async fn run<H, F>(self, cancel: CancellationToken, handle: H)
    where
        H: Fn(BoxIo) -> F,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.accept() => match r {
                    Ok(io) => {
                        tokio::spawn(handle(io));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }
}

/// Running listeners; closing waits for the accept loops and removes unix sockets.
pub(crate) struct Listeners {
    tasks: JoinSet<()>,
    sockets: Vec<PathBuf>,
}

impl Listeners {
    pub(crate) fn new() -> Self {
        Self {
            tasks: JoinSet::new(),
            sockets: vec![],
        }
    }

    /// Runs `acceptor` (bound from `ep`) on the listener set.
    pub(crate) fn add<H, F>(
        &mut self,
        ep: &Endpoint,
        acceptor: Acceptor,
        cancel: CancellationToken,
        handle: H,
    ) where
        H: Fn(BoxIo) -> F + Send + 'static,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Endpoint::Unix(p) = ep {
            self.sockets.push(p.clone());
        }
        self.tasks.spawn(acceptor.run(cancel, handle));
    }

    pub(crate) async fn close(mut self) {
        while self.tasks.join_next().await.is_some() {}
        for s in &self.sockets {
            let _ = std::fs::remove_file(s);
        }
    }
}

/// Starts the API listeners of `hosts`.
pub(crate) async fn start(
    hosts: &[String],
    app: Router,
    cancel: CancellationToken,
) -> anyhow::Result<Listeners> {
    let mut l = Listeners::new();
    for host in hosts {
        if let Some(path) = host.strip_prefix("mux+unix://") {
            let ep = Endpoint::Unix(PathBuf::from(path));
            let acc = ep.bind()?;
            l.add(&ep, acc, cancel.clone(), mux_api(app.clone()));
            continue;
        }
        let ep = Endpoint::parse(host)?;
        let acc = match ep.bind() {
            Ok(a) => a,
            // A VM without a vsock device still serves its unix socket.
            Err(e) if ep.is_vsock() => {
                tracing::error!(error = format!("{e:#}"), "vsock API listener not started");
                continue;
            }
            Err(e) => return Err(e),
        };
        match ep {
            Endpoint::Unix(ref path) => {
                let Acceptor::Unix(listener) = acc else {
                    unreachable!("unix endpoint binds a unix listener")
                };
                l.tasks.spawn(berth_server::serve::serve_unix(
                    app.clone(),
                    listener,
                    cancel.clone(),
                ));
                l.sockets.push(path.clone());
            }
            Endpoint::Vsock(_) => l.add(&ep, acc, cancel.clone(), mux_api(app.clone())),
            Endpoint::Tcp(_) => {
                let app = app.clone();
                l.add(&ep, acc, cancel.clone(), move |io| {
                    berth_server::serve::serve_stream(app.clone(), io)
                });
            }
        }
    }
    Ok(l)
}

/// The address of a `tcp://` host, which must be a loopback one (`localhost` counts).
fn loopback_tcp(addr: &str) -> anyhow::Result<std::net::SocketAddr> {
    use std::net::{Ipv4Addr, SocketAddr};
    let addr = addr.trim_end_matches('/');
    let parsed = match addr.strip_prefix("localhost:") {
        Some(port) => port
            .parse()
            .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
            .ok(),
        None => addr.parse::<SocketAddr>().ok(),
    };
    let Some(sa) = parsed else {
        bail!("invalid tcp endpoint tcp://{addr}: use tcp://ADDRESS:PORT");
    };
    if !sa.ip().is_loopback() {
        bail!(
            "refusing to listen on tcp://{sa}: the API is root-equivalent and berth-agent \
             has no TLS client verification (--tlsverify); listen on a loopback address \
             (tcp://127.0.0.1:PORT) or on a unix socket"
        );
    }
    Ok(sa)
}

/// Serves the Docker API on every stream of a multiplexed connection.
fn mux_api(app: Router) -> impl Fn(BoxIo) -> BoxFuture<'static, ()> + Send + 'static {
    move |io| {
        let app = app.clone();
        Box::pin(async move {
            berth_vsock::mux::serve(io, move |s| {
                berth_server::serve::serve_stream(app.clone(), s)
            })
            .await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            Endpoint::parse("vsock://:2375").unwrap(),
            Endpoint::Vsock(2375)
        );
        assert_eq!(
            Endpoint::parse("vsock://2376").unwrap(),
            Endpoint::Vsock(2376)
        );
        assert_eq!(
            Endpoint::parse("unix:///run/x.sock").unwrap(),
            Endpoint::Unix("/run/x.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375").unwrap(),
            Endpoint::Tcp("127.0.0.1:2375".parse().unwrap())
        );
        assert_eq!(
            Endpoint::parse("tcp://localhost:2375").unwrap(),
            Endpoint::Tcp("127.0.0.1:2375".parse().unwrap())
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:2375").unwrap(),
            Endpoint::Tcp("[::1]:2375".parse().unwrap())
        );
    }

    #[test]
    fn tcp_beyond_loopback_is_refused() {
        for host in [
            "tcp://0.0.0.0:2375",
            "tcp://[::]:2375",
            "tcp://192.168.1.4:2376",
        ] {
            let e = Endpoint::parse(host).unwrap_err().to_string();
            assert!(e.starts_with("refusing to listen on tcp://"), "{host}: {e}");
        }
        assert!(Endpoint::parse("tcp://example.com:2375").is_err());
        assert!(Endpoint::parse("tcp://127.0.0.1").is_err());
    }
}
