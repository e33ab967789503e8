//! AF_VSOCK sockets on tokio: the guest's listener and the host's connector where the kernel
//! provides vsock (`/dev/vhost-vsock` hosts, inside the guest).

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{BoxIo, Connector};

fn sockaddr(cid: u32, port: u32) -> libc::sockaddr_vm {
    // SAFETY: sockaddr_vm is plain old data; all-zero is a valid value.
    let mut a: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    a.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    a.svm_cid = cid;
    a.svm_port = port;
    a
}

const ADDR_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t;

fn new_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the returned fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_VSOCK,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Registers an owned socket with the reactor.
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd stays open and keeps its descriptor until the AsyncFd drops it.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A listening AF_VSOCK socket; optionally accepts only one peer CID (the guest takes only the
/// host, CID 2, so other guests on the same host cannot reach the engine).
pub struct VsockListener {
    fd: AsyncFd<OwnedFd>,
    only_cid: Option<u32>,
}

impl VsockListener {
    /// Binds `cid:port` (use [`crate::CID_ANY`] for any) and listens.
    pub fn bind(cid: u32, port: u32, only_cid: Option<u32>) -> io::Result<Self> {
        let fd = new_socket()?;
        let addr = sockaddr(cid, port);
        // SAFETY: addr is a valid sockaddr_vm of ADDR_LEN bytes; fd is open.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_vm).cast(),
                ADDR_LEN,
            )
        })?;
        // SAFETY: fd is an open, bound socket.
        check(unsafe { libc::listen(fd.as_raw_fd(), 128) })?;
        Ok(Self {
            fd: register(fd)?,
            only_cid,
        })
    }

    /// Accepts the next allowed connection; returns it with the peer's CID and port.
    pub async fn accept(&self) -> io::Result<(VsockStream, u32, u32)> {
        loop {
            let (fd, cid, port) = self.accept_one().await?;
            match self.only_cid {
                Some(want) if want != cid => {
                    tracing::warn!(
                        cid,
                        port,
                        "refused vsock connection from an unexpected peer"
                    );
                    drop(fd);
                }
                _ => return Ok((VsockStream::from_fd(fd)?, cid, port)),
            }
        }
    }

    async fn accept_one(&self) -> io::Result<(OwnedFd, u32, u32)> {
        loop {
            let mut guard = self.fd.readable().await?;
            let r = guard.try_io(|fd| {
                let mut addr = sockaddr(0, 0);
                let mut len = ADDR_LEN;
                // SAFETY: addr/len describe a writable sockaddr_vm buffer.
                let rc = unsafe {
                    libc::accept4(
                        fd.as_raw_fd(),
                        (&mut addr as *mut libc::sockaddr_vm).cast(),
                        &mut len,
                        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    )
                };
                let rc = check(rc)?;
                // SAFETY: rc is a fresh descriptor returned by accept4.
                Ok((
                    unsafe { OwnedFd::from_raw_fd(rc) },
                    addr.svm_cid,
                    addr.svm_port,
                ))
            });
            match r {
                Ok(res) => return res,
                Err(_would_block) => continue,
            }
        }
    }
}

/// A connected AF_VSOCK stream.
pub struct VsockStream {
    fd: AsyncFd<OwnedFd>,
}

impl VsockStream {
    /// The socket itself, for a consumer that reads it outside tokio (the guest kernel's 9p
    /// client).
    pub fn into_owned_fd(self) -> OwnedFd {
        self.fd.into_inner()
    }

    fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        Ok(Self { fd: register(fd)? })
    }

    /// Connects to `cid:port`.
    pub async fn connect(cid: u32, port: u32) -> io::Result<Self> {
        let fd = new_socket()?;
        let addr = sockaddr(cid, port);
        // SAFETY: addr is a valid sockaddr_vm of ADDR_LEN bytes; fd is open.
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_vm).cast(),
                ADDR_LEN,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
        }
        let s = Self::from_fd(fd)?;
        let _ = s.fd.writable().await?;
        let err = so_error(s.fd.get_ref().as_raw_fd())?;
        if err != 0 {
            return Err(io::Error::from_raw_os_error(err));
        }
        Ok(s)
    }
}

fn so_error(fd: RawFd) -> io::Result<libc::c_int> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err/len describe a writable c_int.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(err)
}

impl AsyncRead for VsockStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let r = guard.try_io(|fd| {
                // SAFETY: unfilled is a writable buffer of its length.
                let n = unsafe {
                    libc::read(fd.as_raw_fd(), unfilled.as_mut_ptr().cast(), unfilled.len())
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for VsockStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            let r = guard.try_io(|fd| {
                // SAFETY: data is a readable buffer of its length; MSG_NOSIGNAL avoids SIGPIPE.
                let n = unsafe {
                    libc::send(
                        fd.as_raw_fd(),
                        data.as_ptr().cast(),
                        data.len(),
                        libc::MSG_NOSIGNAL,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(res) => return Poll::Ready(res),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SAFETY: shutdown(2) on an open socket.
        let rc = unsafe { libc::shutdown(self.fd.get_ref().as_raw_fd(), libc::SHUT_WR) };
        Poll::Ready(check(rc).map(|_| ()))
    }
}

/// AF_VSOCK connector to one guest CID (hosts with kernel vhost-vsock).
#[derive(Debug, Clone, Copy)]
pub struct VsockConnector {
    cid: u32,
}

impl VsockConnector {
    pub fn new(cid: u32) -> Self {
        Self { cid }
    }
}

impl Connector for VsockConnector {
    fn connect(&self, port: u32) -> Pin<Box<dyn Future<Output = io::Result<BoxIo>> + Send + '_>> {
        Box::pin(async move { Ok(Box::new(VsockStream::connect(self.cid, port).await?) as BoxIo) })
    }
}
