//! Where a Docker API is served on this host: a unix socket (Linux, macOS) or a named pipe
//! (Windows). [`Endpoint`] is the address and its Docker URL form (`unix:///path`,
//! `npipe:////./pipe/name`), on every platform; [`Listener`] and [`connect`] use the
//! platform's own kind.

use std::fmt;
use std::path::PathBuf;

use berth_vsock::BoxIo;

use crate::error::{HostError, Result};

/// The standard Docker named pipe, served besides Berth's own on request (as the system socket
/// link on unix).
pub const DOCKER_ENGINE_PIPE: &str = r"\\.\pipe\docker_engine";

/// A Docker API address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket path.
    Unix(PathBuf),
    /// A named pipe, `\\.\pipe\<name>`.
    Pipe(String),
}

impl Endpoint {
    /// The Docker URL: `unix:///path` or `npipe:////./pipe/name` (what `DOCKER_HOST` and
    /// `docker context` take).
    pub fn url(&self) -> String {
        match self {
            Self::Unix(p) => format!("unix://{}", p.display()),
            Self::Pipe(p) => format!("npipe://{}", p.replace('\\', "/")),
        }
    }

    /// Parses a Docker URL (`unix:///path`, `npipe:////./pipe/name`, `npipe://./pipe/name`) or
    /// a bare absolute unix path; `None` for anything else (`tcp://`, `ssh://`, relative paths).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("npipe://") {
            let name = rest.trim_start_matches('/').strip_prefix("./pipe/")?;
            return (!name.is_empty() && !name.contains(['/', '\\']))
                .then(|| Self::Pipe(format!(r"\\.\pipe\{name}")));
        }
        let path = s.strip_prefix("unix://").unwrap_or(s);
        (path.starts_with('/') && !path.contains("://")).then(|| Self::Unix(PathBuf::from(path)))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

fn not_here(e: &Endpoint) -> HostError {
    HostError::Io {
        path: e.to_string().into(),
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this kind of endpoint does not exist on this platform",
        ),
    }
}

/// Accepts clients on an [`Endpoint`] of this platform.
pub struct Listener {
    inner: sys::Listener,
}

impl Listener {
    /// Binds `e`: a unix socket gets mode 0600 and replaces a stale socket file; a named pipe
    /// must not be served already by another process (first instance only).
    pub fn bind(e: &Endpoint) -> Result<Self> {
        Ok(Self {
            inner: sys::Listener::bind(e)?,
        })
    }

    /// The next client.
    pub async fn accept(&mut self) -> std::io::Result<BoxIo> {
        self.inner.accept().await
    }
}

/// Connects to `e` (a busy named pipe is retried for up to 2 s).
pub async fn connect(e: &Endpoint) -> std::io::Result<BoxIo> {
    sys::connect(e).await
}

#[cfg(unix)]
mod sys {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use berth_vsock::BoxIo;
    use tokio::net::{UnixListener, UnixStream};

    use super::{not_here, Endpoint};
    use crate::error::{HostError, Result};

    pub(super) struct Listener(UnixListener);

    impl Listener {
        pub(super) fn bind(e: &Endpoint) -> Result<Self> {
            match e {
                Endpoint::Unix(p) => bind_owner_only(p).map(Self),
                Endpoint::Pipe(_) => Err(not_here(e)),
            }
        }

        pub(super) async fn accept(&mut self) -> std::io::Result<BoxIo> {
            let (s, _) = self.0.accept().await?;
            Ok(Box::new(s))
        }
    }

    /// Binds `path` with mode 0600, replacing a stale socket.
    fn bind_owner_only(path: &Path) -> Result<UnixListener> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(HostError::io(path)(e)),
        }
        let l = UnixListener::bind(path).map_err(HostError::io(path))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(HostError::io(path))?;
        Ok(l)
    }

    pub(super) async fn connect(e: &Endpoint) -> std::io::Result<BoxIo> {
        match e {
            Endpoint::Unix(p) => Ok(Box::new(UnixStream::connect(p).await?)),
            Endpoint::Pipe(_) => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "named pipes exist on Windows only",
            )),
        }
    }
}

#[cfg(windows)]
mod sys {
    use std::time::Duration;

    use berth_vsock::BoxIo;
    use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeServer, ServerOptions};

    use super::{not_here, Endpoint};
    use crate::error::{HostError, Result};

    /// ERROR_PIPE_BUSY: every instance is taken; a new one appears when the server accepts.
    const ERROR_PIPE_BUSY: i32 = 231;

    /// A named pipe server: one instance waits for a client; on connect it is handed out and
    /// the next instance is created before the client is served, so clients never find no
    /// instance for longer than that step.
    pub(super) struct Listener {
        name: String,
        next: NamedPipeServer,
    }

    impl Listener {
        pub(super) fn bind(e: &Endpoint) -> Result<Self> {
            let Endpoint::Pipe(name) = e else {
                return Err(not_here(e));
            };
            // first_pipe_instance: fail rather than share the name with another server.
            let next = ServerOptions::new()
                .first_pipe_instance(true)
                .reject_remote_clients(true)
                .create(name)
                .map_err(HostError::io(name))?;
            Ok(Self {
                name: name.clone(),
                next,
            })
        }

        pub(super) async fn accept(&mut self) -> std::io::Result<BoxIo> {
            self.next.connect().await?;
            let fresh = ServerOptions::new()
                .reject_remote_clients(true)
                .create(&self.name)?;
            let connected = std::mem::replace(&mut self.next, fresh);
            Ok(Box::new(connected))
        }
    }

    pub(super) async fn connect(e: &Endpoint) -> std::io::Result<BoxIo> {
        let Endpoint::Pipe(name) = e else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "unix sockets are not served on Windows",
            ));
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            match ClientOptions::new().open(name) {
                Ok(c) => return Ok(Box::new(c)),
                Err(e)
                    if e.raw_os_error() == Some(ERROR_PIPE_BUSY)
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn urls_round_trip() {
        let u = Endpoint::Unix("/home/u/.berth/run/docker.sock".into());
        assert_eq!(u.url(), "unix:///home/u/.berth/run/docker.sock");
        assert_eq!(Endpoint::parse(&u.url()), Some(u));
        let p = Endpoint::Pipe(r"\\.\pipe\berth_docker".into());
        assert_eq!(p.url(), "npipe:////./pipe/berth_docker");
        assert_eq!(Endpoint::parse(&p.url()), Some(p.clone()));
        assert_eq!(Endpoint::parse("npipe://./pipe/berth_docker"), Some(p));
        assert_eq!(
            Endpoint::parse(&format!(
                "npipe://{}",
                DOCKER_ENGINE_PIPE.replace('\\', "/")
            )),
            Some(Endpoint::Pipe(DOCKER_ENGINE_PIPE.into()))
        );
    }

    #[test]
    fn other_hosts_are_not_endpoints() {
        for s in [
            "tcp://10.0.0.1:2375",
            "ssh://host",
            "relative.sock",
            "",
            "npipe://",
            "npipe:////./pipe/",
            "npipe:////./pipe/a/b",
            "npipe:////host/pipe/x",
        ] {
            assert_eq!(Endpoint::parse(s), None, "{s}");
        }
        assert_eq!(Endpoint::parse("/a/b"), Some(Endpoint::Unix("/a/b".into())));
    }

    /// This platform's endpoint kind in a temp dir.
    fn local_endpoint(dir: &std::path::Path) -> Endpoint {
        let s = crate::StateDir::new(dir);
        s.create().unwrap();
        s.docker_endpoint()
    }

    #[tokio::test]
    async fn a_listener_serves_many_clients_in_turn_and_at_once() {
        let d = tempfile::tempdir().unwrap();
        let e = local_endpoint(d.path());
        let mut l = Listener::bind(&e).unwrap();
        tokio::spawn(async move {
            while let Ok(mut c) = l.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 5];
                    if c.read_exact(&mut b).await.is_ok() {
                        b.reverse();
                        let _ = c.write_all(&b).await;
                        let _ = c.shutdown().await;
                    }
                });
            }
        });
        let mut clients = Vec::new();
        for i in 0..8u8 {
            let e = e.clone();
            clients.push(tokio::spawn(async move {
                let mut c = connect(&e).await.unwrap();
                c.write_all(&[i, 1, 2, 3, 4]).await.unwrap();
                let mut b = Vec::new();
                c.read_to_end(&mut b).await.unwrap();
                assert_eq!(b, [4, 3, 2, 1, i]);
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
    }

    /// A stale unix socket from a dead run must not block a start: it is replaced. (A live
    /// named pipe is refused to a second server by `first_pipe_instance` on Windows; wine 8
    /// does not enforce that flag, so it is not asserted here.)
    #[cfg(unix)]
    #[tokio::test]
    async fn a_stale_unix_socket_is_replaced() {
        let d = tempfile::tempdir().unwrap();
        let e = local_endpoint(d.path());
        let _first = Listener::bind(&e).unwrap();
        assert!(Listener::bind(&e).is_ok());
    }
}
