//! Named network namespaces: a fresh namespace pinned by a bind mount of its nsfs file (what
//! `ip netns add` does), so it outlives the thread that made it and runc can join it by path.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// A namespace (just created or joined): its pinned file and a netlink socket opened inside it.
pub(crate) struct Created {
    pub(crate) file: File,
    pub(crate) netlink: OwnedFd,
}

/// Makes `dir` a shared mount point, as `ip netns` does for /run/netns: unmounting a namespace
/// file then also unmounts the copies other mount namespaces (containers being set up) took.
pub(crate) fn prepare_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let shared = || {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    if shared().is_ok() && is_mount_point(dir)? {
        return Ok(());
    }
    mount(
        Some(dir),
        dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    shared()?;
    Ok(())
}

/// Undoes [`prepare_dir`] when no namespace is pinned in `dir` any more, so an engine that
/// stops with no containers leaves no mount behind.
pub(crate) fn release_dir(dir: &Path) -> io::Result<()> {
    if fs::read_dir(dir)?.next().is_some() || !is_mount_point(dir)? {
        return Ok(());
    }
    umount2(dir, MntFlags::MNT_DETACH)?;
    Ok(())
}

fn is_mount_point(dir: &Path) -> io::Result<bool> {
    let dir = fs::canonicalize(dir)?;
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| Path::new(&unescape(mp)) == dir)
    }))
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Creates a new network namespace pinned at `path`. Blocking: runs a short-lived thread that
/// unshares its network namespace, so call it from `spawn_blocking`.
pub(crate) fn create(path: &Path) -> io::Result<Created> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)?;
    let target: PathBuf = path.to_owned();
    let made = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || -> io::Result<Created> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(Created {
                file: File::open(&target)?,
                netlink: netlink_socket()?,
            })
        })?
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))?;
    if made.is_err() {
        let _ = remove(path);
    }
    made
}

/// A netlink route socket in the calling thread's network namespace.
fn netlink_socket() -> io::Result<OwnedFd> {
    let sock = rtnetlink::sys::Socket::new(rtnetlink::sys::protocols::NETLINK_ROUTE)?;
    // SAFETY: `into_raw_fd` hands over sole ownership of the socket's descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(sock.into_raw_fd()) })
}

/// Opens the existing namespace pinned at `path` and a netlink socket inside it (to add an
/// interface to a running container). Blocking: a short-lived thread joins the namespace.
pub(crate) fn open(path: &Path) -> io::Result<Created> {
    let file = File::open(path)?;
    let ns = file.try_clone()?;
    let netlink = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || -> io::Result<OwnedFd> {
            setns(&ns, CloneFlags::CLONE_NEWNET)?;
            netlink_socket()
        })?
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))??;
    Ok(Created { file, netlink })
}

/// Unmounts and deletes a namespace file; missing or already unmounted is fine.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
