//! A pty master as a non-blocking async reader or writer on tokio's reactor. `tokio::fs::File`
//! would read it on a blocking thread, which stays in `read` while the terminal is quiet, so a
//! shell waiting for input kept a thread (and the runtime's shutdown) forever.

use std::fs::File;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One descriptor of a pty master (dup one per reader and writer).
pub(crate) struct AsyncPty(AsyncFd<File>);

impl AsyncPty {
    /// Makes `master` non-blocking (shared by every duplicate of it) and registers it.
    pub(crate) fn new(master: File) -> io::Result<Self> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        // SAFETY: the File owns its descriptor and keeps it open until the AsyncFd drops it.
        let fd = unsafe { AsyncFd::register(master) }.map_err(|e| e.into_parts().1)?;
        Ok(Self(fd))
    }
}

impl AsyncRead for AsyncPty {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| fd.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // The other side is closed (every process on the terminal is gone): the end.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for AsyncPty {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().write(data)) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn relays_both_ways_and_ends_when_the_slave_closes() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let master = File::from(pty.master);
        let mut slave = File::from(pty.slave);
        let mode = {
            let mut m = nix::sys::termios::tcgetattr(&slave).unwrap();
            nix::sys::termios::cfmakeraw(&mut m);
            m
        };
        nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &mode).unwrap();
        let mut reader = AsyncPty::new(master.try_clone().unwrap()).unwrap();
        let mut writer = AsyncPty::new(master).unwrap();
        writer.write_all(b"in\n").await.unwrap();
        let mut got = [0u8; 3];
        slave.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"in\n");
        slave.write_all(b"out").unwrap();
        let mut buf = [0u8; 3];
        reader.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"out");
        drop(slave);
        let mut rest = vec![];
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            reader.read_to_end(&mut rest),
        )
        .await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?}");
    }
}
