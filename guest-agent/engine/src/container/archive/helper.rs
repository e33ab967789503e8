//! `berth-agent archive <request>`: the process that reads or writes a container's files.
//!
//! It runs the operation inside a private view of the container's root, so every path is
//! resolved by the kernel with the container root as `/`: it enters a new mount namespace
//! (mounts made there vanish with the process, so nothing is ever left mounted), mounts the
//! overlay when the container is not running (its rootfs is then not mounted), mounts the
//! container's volumes, binds and `/etc/hosts`-style files over it like the runtime does, makes
//! the root read-only for `--read-only` containers, and `chroot`s into it. Symlinks such as
//! `/etc/passwd` or `../../..` therefore resolve inside the container, and writes to a volume
//! path land in the volume.
//!
//! Protocol: the request is JSON in `argv`; the process writes one JSON [`Reply`] line on
//! stdout, followed for `get` and `export` by the tar stream; `put` reads a tar on stdin and
//! replies after extracting it.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Component, Path, PathBuf};

use berth_docker_api::files::PathStat;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use super::tarball::{go_file_mode, TreeWriter};
use crate::image::unpack::{unpack_with, UnpackOptions};
use crate::mount::RootfsMount;
use crate::{EngineError, ErrorKind, Result};

/// What the helper does, on a path inside the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Op {
    Stat {
        path: String,
    },
    Get {
        path: String,
    },
    Put {
        path: String,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    },
    Export,
}

/// A mount laid over the root in the helper's view.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bind {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// The request, passed as JSON in the helper's arguments.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Request {
    pub op: Op,
    pub rootfs: RootfsMount,
    pub readonly_rootfs: bool,
    pub binds: Vec<Bind>,
}

/// The helper's status line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok(Option<PathStat>),
    Error { kind: String, message: String },
}

impl Reply {
    fn error(e: &EngineError) -> Self {
        let kind = match e.kind() {
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidArgument => "invalid",
            ErrorKind::Forbidden => "forbidden",
            _ => "internal",
        };
        Reply::Error {
            kind: kind.into(),
            message: e.message().to_string(),
        }
    }

    /// The reply as an engine result.
    pub fn into_result(self) -> Result<Option<PathStat>> {
        match self {
            Reply::Ok(s) => Ok(s),
            Reply::Error { kind, message } => Err(match kind.as_str() {
                "not_found" => EngineError::not_found(message),
                "invalid" => EngineError::invalid(message),
                "forbidden" => EngineError::new(ErrorKind::Forbidden, message),
                _ => EngineError::internal(message),
            }),
        }
    }
}

/// Entry point of `berth-agent archive <request json>`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    // SAFETY: fd 1 is this process's stdout, owned from here on.
    let stdout = unsafe { File::from_raw_fd(io::stdout().as_raw_fd()) };
    let mut out = BufWriter::with_capacity(256 * 1024, stdout);
    let req = match args
        .first()
        .ok_or_else(|| EngineError::invalid("usage: berth-agent archive <request>"))
        .and_then(|a| serde_json::from_str::<Request>(a).map_err(EngineError::from))
    {
        Ok(r) => r,
        Err(e) => return fail(&mut out, &e),
    };
    if let Err(e) = enter(&req) {
        let msg = format!("preparing the container filesystem: {}", e.message());
        return fail(&mut out, &EngineError::internal(msg));
    }
    match run(&req.op, &mut out) {
        Ok(()) => match out.flush() {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Err(e) => {
            // Before the status line this is the reply; after it, the stream is cut short.
            eprintln!("{}", e.message());
            fail(&mut out, &e)
        }
    }
}

fn fail(out: &mut impl Write, e: &EngineError) -> i32 {
    let _ = reply(out, &Reply::error(e));
    let _ = out.flush();
    1
}

fn reply(out: &mut impl Write, r: &Reply) -> io::Result<()> {
    let mut line = serde_json::to_vec(r)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

fn mount_err(what: &str, path: &Path, e: nix::Error) -> EngineError {
    EngineError::internal(format!("{what} {}: {e}", path.display()))
}

/// Builds the private view and changes root into it.
fn enter(req: &Request) -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| EngineError::internal(format!("unshare: {e}")))?;
    // Nothing mounted here may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| mount_err("make private", Path::new("/"), e))?;
    let root = &req.rootfs.target;
    if !crate::mount::is_mounted(root) {
        crate::mount::mount_overlay(&req.rootfs)?;
    }
    if req.readonly_rootfs {
        bind(root, root, true)?;
    }
    let root_dir = File::open(root)?;
    for b in &req.binds {
        bind_into(&root_dir, b).map_err(|e| e.context(format!("mount at {}", b.destination)))?;
    }
    drop(root_dir);
    nix::unistd::chroot(root).map_err(|e| mount_err("chroot", root, e))?;
    std::env::set_current_dir("/")?;
    Ok(())
}

/// Bind-mounts `source` at `target`, read-only if asked (a second, remounting call).
fn bind(source: &Path, target: &Path, readonly: bool) -> Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| mount_err("bind", target, e))?;
    if readonly {
        remount_readonly(target)?;
    }
    Ok(())
}

/// Makes the bind mount at `target` read-only.
fn remount_readonly(target: &Path) -> Result<()> {
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| mount_err("remount read-only", target, e))
}

/// Lays `b` over the root at its destination, resolved inside the root (a symlink in the
/// image cannot redirect it to the host); creates a missing mount point in an existing parent.
fn bind_into(root: &File, b: &Bind) -> Result<()> {
    let dest = b.destination.trim_start_matches('/');
    if dest.is_empty() {
        return Err(EngineError::invalid("mount over the root"));
    }
    let how = |flags: OFlag| {
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT)
    };
    let target = match openat2(root, dest, how(OFlag::O_PATH)) {
        Ok(fd) => fd,
        Err(nix::Error::ENOENT) => {
            let rel = Path::new(dest);
            let parent = rel
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = rel.file_name().unwrap_or(OsStr::new(""));
            let pfd = openat2(root, parent, how(OFlag::O_PATH | OFlag::O_DIRECTORY))?;
            if b.source.is_dir() {
                nix::sys::stat::mkdirat(&pfd, name, Mode::from_bits_truncate(0o755))?;
            } else {
                drop(nix::fcntl::openat(
                    &pfd,
                    name,
                    OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )?);
            }
            openat2(root, dest, how(OFlag::O_PATH))?
        }
        Err(e) => return Err(e.into()),
    };
    let proc_path = PathBuf::from(format!("/proc/self/fd/{}", target.as_raw_fd()));
    bind(&b.source, &proc_path, false)?;
    if b.readonly {
        // `target` still names the directory under the new mount, where a remount fails
        // with EINVAL: open the mount itself to make it read-only.
        let mounted = openat2(root, dest, how(OFlag::O_PATH))?;
        remount_readonly(&PathBuf::from(format!(
            "/proc/self/fd/{}",
            mounted.as_raw_fd()
        )))?;
    }
    Ok(())
}

/// Dockerd's view of a requested path: absolute, cleaned, with a trailing `/.` kept.
pub fn clean_request_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str().unwrap_or("")),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if (path.ends_with("/.") || path == ".") && out != "/" {
        out.push_str("/.");
    }
    out
}

/// Go's `filepath.Base` of a cleaned path: `.` for `/x/.`, `/` for the root.
fn base_name(clean: &str) -> String {
    if clean == "/" {
        return "/".into();
    }
    clean.rsplit('/').next().unwrap_or(".").to_string()
}

/// Whether the request names the directory behind a final symlink (`dir/`, `dir/.`).
fn follows(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.")
}

fn not_found(path: &str) -> impl Fn(io::Error) -> EngineError + '_ {
    move |e| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => EngineError::not_found(path.to_string()),
        _ => EngineError::from(e).context(path.to_string()),
    }
}

/// The stat `docker cp` reads, of `path` inside the (chrooted) container.
pub fn stat_path(path: &str) -> Result<PathStat> {
    let clean = clean_request_path(path);
    let meta = if follows(path) {
        fs::metadata(&clean)
    } else {
        fs::symlink_metadata(&clean)
    }
    .map_err(not_found(path))?;
    let link_target = if meta.file_type().is_symlink() {
        resolve_link(Path::new(&clean))
    } else {
        String::new()
    };
    let mtime = chrono::DateTime::from_timestamp(
        std::os::unix::fs::MetadataExt::mtime(&meta),
        std::os::unix::fs::MetadataExt::mtime_nsec(&meta) as u32,
    )
    .unwrap_or_default()
    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    Ok(PathStat {
        name: base_name(&clean),
        size: meta.len() as i64,
        mode: go_file_mode(&meta),
        mtime,
        link_target,
    })
}

/// Where a symlink leads, fully resolved (inside the chroot, so inside the container).
fn resolve_link(link: &Path) -> String {
    if let Ok(p) = fs::canonicalize(link) {
        return p.to_string_lossy().into_owned();
    }
    // Dangling: resolve lexically against the link's directory.
    let target = fs::read_link(link).unwrap_or_default();
    let joined = link.parent().unwrap_or(Path::new("/")).join(target);
    clean_request_path(&joined.to_string_lossy())
}

fn run(op: &Op, out: &mut impl Write) -> Result<()> {
    match op {
        Op::Stat { path } => Ok(reply(out, &Reply::Ok(Some(stat_path(path)?)))?),
        Op::Get { path } => {
            let stat = stat_path(path)?;
            let clean = clean_request_path(path);
            reply(out, &Reply::Ok(Some(stat.clone())))?;
            let top = if stat.name == "/" { "." } else { &stat.name };
            let mut w = TreeWriter::new(out);
            w.add_tree(Path::new(&clean), top, follows(path))?;
            w.finish()?.flush()?;
            Ok(())
        }
        Op::Put {
            path,
            no_overwrite_dir_non_dir,
            copy_uid_gid,
        } => {
            let clean = clean_request_path(path);
            let meta = fs::metadata(&clean).map_err(not_found(path))?;
            if !meta.is_dir() {
                return Err(EngineError::invalid("extraction point is not a directory"));
            }
            let opts = UnpackOptions {
                whiteouts: false,
                owner: (!copy_uid_gid).then_some((0, 0)),
                no_overwrite_dir_non_dir: *no_overwrite_dir_non_dir,
                // Safe here: this process's root is the container's.
                follow_dir_symlinks: true,
            };
            let stdin = io::stdin().lock();
            unpack_with(stdin, Path::new(&clean), opts).map_err(read_only)?;
            // Drain what the tar's end left, so the sender never sees a broken pipe.
            let _ = io::copy(&mut io::stdin().lock().take(1 << 20), &mut io::sink());
            Ok(reply(out, &Reply::Ok(None))?)
        }
        Op::Export => {
            reply(out, &Reply::Ok(None))?;
            let mut w = TreeWriter::new(out);
            w.add_tree(Path::new("/"), "", false)?;
            w.finish()?.flush()?;
            Ok(())
        }
    }
}

/// A write that hit a read-only mount: dockerd's 403.
fn read_only(e: EngineError) -> EngineError {
    if e.message().contains("Read-only file system") {
        EngineError::new(ErrorKind::Forbidden, "container rootfs is marked read-only")
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_clean_like_dockerd() {
        assert_eq!(clean_request_path("/etc/"), "/etc");
        assert_eq!(clean_request_path("etc/."), "/etc/.");
        assert_eq!(clean_request_path("/a/../../b"), "/b");
        assert_eq!(clean_request_path("/"), "/");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/etc"), "etc");
        assert_eq!(base_name("/"), "/");
    }

    #[test]
    fn reply_round_trips_errors() {
        let r = Reply::error(&EngineError::invalid("bad"));
        let line = serde_json::to_string(&r).unwrap();
        let back: Reply = serde_json::from_str(&line).unwrap();
        let e = back.into_result().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(e.message(), "bad");
    }
}
