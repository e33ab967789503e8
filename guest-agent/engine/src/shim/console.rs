//! Console plumbing: receiving a pty master over a runtime's console socket, window sizes.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

type ShimResult<T> = Result<T, String>;

/// Receives the pty master the runtime sends over `--console-socket`.
pub(crate) fn recv_fd(conn: &UnixStream) -> ShimResult<File> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("receive console: {e}"))?;
    for c in msg.cmsgs().map_err(|e| e.to_string())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                return Ok(unsafe { File::from_raw_fd(*fd) });
            }
        }
    }
    Err("console socket sent no descriptor".into())
}

/// Sets a terminal's window size.
pub(crate) fn resize(tty: &File, height: u16, width: u16) {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct that lives for the duration of the call.
    unsafe {
        libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws);
    }
}
