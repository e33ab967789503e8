//! Unpacks one layer tar into its own directory, in overlayfs's format, without ever writing
//! outside that directory.
//!
//! Each layer gets a fresh directory, so only entries of the same tar can interfere: paths
//! with `..` are refused, absolute paths are made relative, nothing is created under a
//! symlink (every parent component is checked with `lstat`), existing entries are unlinked
//! (never written through) before a new one takes their place, and hard links must name a
//! target inside the layer. OCI whiteouts become overlay whiteouts (`.wh.x` → char device
//! 0/0, `.wh..wh..opq` → `trusted.overlay.opaque=y`); other device nodes are skipped.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{self, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd;
use tar::EntryType;

use crate::{EngineError, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";
const COPY_BUF: usize = 256 * 1024;

/// What unpacking a layer found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    /// Sum of the sizes of regular files and symlinks, dockerd's layer size.
    pub size: u64,
    pub entries: u64,
    /// Entries skipped as unsafe or unsupported (device nodes, links out of the layer).
    pub skipped: u64,
}

fn unsafe_entry(path: &Path, why: &str) -> EngineError {
    EngineError::invalid(format!("refusing layer entry {}: {why}", path.display()))
}

/// Turns a tar path into a path relative to the layer root: drops `/` and `.`, refuses `..`.
/// `Ok(None)` for the root itself.
fn clean_path(raw: &Path) -> Result<Option<PathBuf>> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err(unsafe_entry(raw, "path contains '..'")),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// How to treat a tar: a layer (the default) or a plain archive copied into a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackOptions {
    /// OCI whiteouts (`.wh.*`) become overlay whiteouts; off, they are ordinary files.
    pub whiteouts: bool,
    /// Every entry gets this owner instead of the one in its header.
    pub owner: Option<(u32, u32)>,
    /// Refuse to replace a directory with a non-directory or the other way round.
    pub no_overwrite_dir_non_dir: bool,
    /// Existing symlinks to directories may be walked through, as dockerd's `docker cp` does.
    /// Only for a process whose root is the target's own root (a `chroot`): there the kernel
    /// keeps every resolution inside it.
    pub follow_dir_symlinks: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        Self {
            whiteouts: true,
            owner: None,
            no_overwrite_dir_non_dir: false,
            follow_dir_symlinks: false,
        }
    }
}

/// The unpacker of one layer; keeps the set of parent directories already checked.
struct Unpacker<'a> {
    root: &'a Path,
    opts: UnpackOptions,
    safe_dirs: HashSet<PathBuf>,
    /// Directories whose mode and times are set once all their children are written.
    dir_meta: Vec<(PathBuf, u32, i64)>,
    buf: Vec<u8>,
    stats: UnpackStats,
}

impl<'a> Unpacker<'a> {
    fn new(root: &'a Path, opts: UnpackOptions) -> Self {
        Self {
            root,
            opts,
            safe_dirs: HashSet::new(),
            dir_meta: Vec::new(),
            buf: vec![0; COPY_BUF],
            stats: UnpackStats::default(),
        }
    }

    /// Makes sure every ancestor of `rel` is a real directory inside the layer (creating the
    /// missing ones) and returns the absolute path of `rel`. A symlink or a non-directory
    /// in the way is an error: writing there would leave the layer.
    fn prepare_parents(&mut self, rel: &Path, create: bool) -> Result<PathBuf> {
        let mut cur = PathBuf::new();
        let parent = rel.parent().unwrap_or(Path::new(""));
        for c in parent.components() {
            cur.push(c);
            if self.safe_dirs.contains(&cur) {
                continue;
            }
            let abs = self.root.join(&cur);
            match fs::symlink_metadata(&abs) {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(m)
                    if m.file_type().is_symlink()
                        && self.opts.follow_dir_symlinks
                        && abs.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(unsafe_entry(rel, "parent is a symlink"))
                }
                Ok(_) => return Err(unsafe_entry(rel, "parent is not a directory")),
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    fs::create_dir(&abs)?;
                    fs::set_permissions(&abs, fs::Permissions::from_mode(0o755))?;
                }
                // A lookup: the caller may accept a parent that is not there.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(EngineError::not_found(format!(
                        "{}: no such directory in the layer",
                        cur.display()
                    ))
                    .with_source(e))
                }
                Err(e) => return Err(e.into()),
            }
            self.safe_dirs.insert(cur.clone());
        }
        Ok(self.root.join(rel))
    }

    /// Removes whatever is at `abs` (never following a symlink), unless it is a directory and
    /// `keep_dir` is set. Returns whether a directory was kept.
    fn clear(&mut self, rel: &Path, abs: &Path, keep_dir: bool) -> Result<bool> {
        match fs::symlink_metadata(abs) {
            Ok(m) if m.is_dir() => {
                if keep_dir {
                    return Ok(true);
                }
                if self.opts.no_overwrite_dir_non_dir {
                    return Err(EngineError::invalid(format!(
                        "cannot overwrite directory \"/{}\" with non-directory",
                        rel.display()
                    )));
                }
                fs::remove_dir_all(abs)?;
                // Directories below it are gone; forget them.
                self.safe_dirs.retain(|d| !d.starts_with(rel));
            }
            Ok(_) if keep_dir && self.opts.no_overwrite_dir_non_dir => {
                return Err(EngineError::invalid(format!(
                    "cannot overwrite non-directory \"/{}\" with directory",
                    rel.display()
                )));
            }
            Ok(_) => fs::remove_file(abs)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        Ok(false)
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path()?.into_owned();
        let Some(rel) = clean_path(&raw)? else {
            return Ok(());
        };
        self.stats.entries += 1;
        let name = rel.file_name().unwrap_or(OsStr::new(""));
        let name = name.to_string_lossy();
        let header = entry.header();
        // Lenient like Go's archive/tar: an empty numeric field reads as 0.
        let (uid, gid) = match self.opts.owner {
            Some((u, g)) => (u64::from(u), u64::from(g)),
            None => (header.uid().unwrap_or(0), header.gid().unwrap_or(0)),
        };
        let mode = header.mode()?;
        let mtime = header.mtime().map_or(0, |m| i64::try_from(m).unwrap_or(0));

        if let Some(hidden) = name
            .strip_prefix(WHITEOUT_PREFIX)
            .filter(|_| self.opts.whiteouts)
        {
            return self.whiteout(&rel, hidden, uid, gid);
        }

        let xattrs = pax_xattrs(&mut entry)?;
        let kind = entry.header().entry_type();
        let abs = self.prepare_parents(&rel, true)?;
        match kind {
            EntryType::Directory => {
                if !self.clear(&rel, &abs, true)? {
                    fs::create_dir(&abs)?;
                }
                self.safe_dirs.insert(rel.clone());
                chown(&abs, uid, gid)?;
                set_xattrs(&abs, &xattrs);
                self.dir_meta.push((abs, mode, mtime));
                return Ok(());
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let open = || {
                    OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&abs)
                };
                // The common case is a fresh path: try it first and clear only when something
                // (a file, a directory, a symlink: O_EXCL never follows one) is already there.
                let mut f = match open() {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        self.clear(&rel, &abs, false)?;
                        open()?
                    }
                    Err(e) => return Err(e.into()),
                };
                self.stats.size += entry.size();
                loop {
                    let n = entry.read(&mut self.buf).map_err(bad_archive)?;
                    if n == 0 {
                        break;
                    }
                    f.write_all(&self.buf[..n])?;
                }
                // Metadata through the open descriptor: no further path walks per file.
                let (uid, gid) = ids(uid, gid)?;
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
                f.set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
                set_xattrs(&abs, &xattrs);
                let t = TimeSpec::new(mtime, 0);
                stat::futimens(&f, &t, &t)?;
                return Ok(());
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| unsafe_entry(&rel, "symlink without target"))?
                    .into_owned();
                self.clear(&rel, &abs, false)?;
                std::os::unix::fs::symlink(&target, &abs)?;
                // dockerd counts a symlink's own size (its target's length) too.
                self.stats.size += target.as_os_str().len() as u64;
            }
            EntryType::Link => {
                let raw_target = entry
                    .link_name()?
                    .ok_or_else(|| unsafe_entry(&rel, "hard link without target"))?
                    .into_owned();
                let Some(target_rel) = clean_path(&raw_target)? else {
                    return Err(unsafe_entry(&rel, "hard link to the layer root"));
                };
                let target = match self.prepare_parents(&target_rel, false) {
                    Ok(t) => Some(t),
                    Err(e) if e.kind() == crate::ErrorKind::NotFound => None,
                    Err(_) => {
                        return Err(unsafe_entry(&rel, "hard link target is outside the layer"))
                    }
                };
                let Some(target) = target.filter(|t| fs::symlink_metadata(t).is_ok()) else {
                    tracing::warn!(entry = %rel.display(), "hard link target missing, skipped");
                    self.stats.skipped += 1;
                    return Ok(());
                };
                if target == abs {
                    return Ok(());
                }
                self.clear(&rel, &abs, false)?;
                fs::hard_link(&target, &abs)?;
                // A hard link shares the target's inode and metadata.
                return Ok(());
            }
            EntryType::Fifo => {
                self.clear(&rel, &abs, false)?;
                unistd::mkfifo(&abs, Mode::from_bits_truncate(0o600))?;
            }
            EntryType::Char | EntryType::Block => {
                let major = header_num(entry.header().device_major())?;
                let minor = header_num(entry.header().device_minor())?;
                if kind != EntryType::Char || major != 0 || minor != 0 || !self.opts.whiteouts {
                    tracing::warn!(entry = %rel.display(), "device node in layer skipped");
                    self.stats.skipped += 1;
                    return Ok(());
                }
                // A ready-made overlay whiteout.
                self.clear(&rel, &abs, false)?;
                make_whiteout(&abs)?;
            }
            other => {
                tracing::warn!(entry = %rel.display(), kind = ?other, "unsupported tar entry skipped");
                self.stats.skipped += 1;
                return Ok(());
            }
        }
        chown(&abs, uid, gid)?;
        if kind != EntryType::Symlink {
            fs::set_permissions(&abs, fs::Permissions::from_mode(mode & 0o7777))?;
        }
        set_xattrs(&abs, &xattrs);
        set_mtime(&abs, mtime)?;
        Ok(())
    }

    fn whiteout(&mut self, rel: &Path, hidden: &str, uid: u64, gid: u64) -> Result<()> {
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if format!("{WHITEOUT_PREFIX}{hidden}") == OPAQUE_WHITEOUT {
            // The directory itself must be a real directory of this layer.
            let abs = self.prepare_parents(&parent_rel.join("x"), true)?;
            let dir = abs.parent().unwrap_or(self.root);
            xattr::set(dir, OPAQUE_XATTR, b"y")
                .map_err(|e| EngineError::from(e).context(format!("opaque {}", dir.display())))?;
            return Ok(());
        }
        if hidden.starts_with(WHITEOUT_PREFIX) || hidden.is_empty() {
            // Other `.wh..wh.` metadata files (aufs hard-link dirs) carry nothing for overlay.
            self.stats.skipped += 1;
            return Ok(());
        }
        let target_rel = parent_rel.join(hidden);
        let abs = self.prepare_parents(&target_rel, true)?;
        self.clear(&target_rel, &abs, false)?;
        make_whiteout(&abs)?;
        chown(&abs, uid, gid)?;
        Ok(())
    }

    fn finish(mut self) -> Result<UnpackStats> {
        // Children first, so setting a parent's time is not undone by its children.
        while let Some((abs, mode, mtime)) = self.dir_meta.pop() {
            fs::set_permissions(&abs, fs::Permissions::from_mode(mode & 0o7777))?;
            set_mtime(&abs, mtime)?;
        }
        Ok(self.stats)
    }
}

fn header_num(v: io::Result<Option<u32>>) -> Result<u32> {
    Ok(v?.unwrap_or(0))
}

fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Ok(key) = ext.key() {
                if let Some(name) = key.strip_prefix(XATTR_PAX_PREFIX) {
                    out.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(out)
}

fn set_xattrs(path: &Path, xattrs: &[(String, Vec<u8>)]) {
    for (name, value) in xattrs {
        if let Err(e) = xattr::set(path, name, value) {
            tracing::warn!(path = %path.display(), name, error = %e, "xattr not applied");
        }
    }
}

fn make_whiteout(abs: &Path) -> Result<()> {
    stat::mknod(abs, SFlag::S_IFCHR, Mode::empty(), stat::makedev(0, 0))?;
    Ok(())
}

fn ids(uid: u64, gid: u64) -> Result<(u32, u32)> {
    let uid = u32::try_from(uid).map_err(|_| EngineError::invalid("uid out of range"))?;
    let gid = u32::try_from(gid).map_err(|_| EngineError::invalid("gid out of range"))?;
    Ok((uid, gid))
}

fn chown(path: &Path, uid: u64, gid: u64) -> Result<()> {
    let (uid, gid) = ids(uid, gid)?;
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    Ok(())
}

fn set_mtime(path: &Path, mtime: i64) -> Result<()> {
    crate::fsutil::set_times_nofollow(path, mtime, 0)?;
    Ok(())
}

/// Unpacks the (uncompressed) layer tar read from `reader` into the empty directory `root`.
pub fn unpack(reader: impl Read, root: &Path) -> Result<UnpackStats> {
    unpack_with(reader, root, UnpackOptions::default())
}

/// Unpacks a tar into the directory `root` (which may hold files already) with `opts`.
pub fn unpack_with(reader: impl Read, root: &Path, opts: UnpackOptions) -> Result<UnpackStats> {
    let mut archive = tar::Archive::new(reader);
    let mut u = Unpacker::new(root, opts);
    for entry in archive.entries().map_err(bad_archive)? {
        u.entry(entry.map_err(bad_archive)?)?;
    }
    u.finish()
}

/// A stream that is not a well-formed tar (or ends early) is the sender's error, not ours.
fn bad_archive(e: io::Error) -> EngineError {
    EngineError::invalid(format!("invalid tar archive: {e}"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use super::*;

    /// Builds a tar from raw headers, so that paths tar::Builder would refuse can be written.
    struct Tar(Vec<u8>);

    impl Tar {
        fn new() -> Self {
            Self(Vec::new())
        }
        fn add(mut self, path: &str, kind: EntryType, link: Option<&str>, data: &[u8]) -> Self {
            let mut h = tar::Header::new_gnu();
            {
                // Write the name bytes directly: set_path refuses `..` and absolute paths.
                let old = h.as_old_mut();
                old.name[..path.len()].copy_from_slice(path.as_bytes());
                if let Some(l) = link {
                    old.linkname[..l.len()].copy_from_slice(l.as_bytes());
                }
            }
            h.set_entry_type(kind);
            h.set_mode(if kind == EntryType::Directory {
                0o755
            } else {
                0o644
            });
            h.set_size(data.len() as u64);
            h.set_mtime(1_600_000_000);
            h.set_uid(0);
            h.set_gid(0);
            h.set_cksum();
            self.0.extend_from_slice(h.as_bytes());
            self.0.extend_from_slice(data);
            let pad = (512 - data.len() % 512) % 512;
            self.0.extend(std::iter::repeat_n(0u8, pad));
            self
        }
        fn file(self, path: &str, data: &[u8]) -> Self {
            self.add(path, EntryType::Regular, None, data)
        }
        fn dir(self, path: &str) -> Self {
            self.add(path, EntryType::Directory, None, b"")
        }
        fn symlink(self, path: &str, target: &str) -> Self {
            self.add(path, EntryType::Symlink, Some(target), b"")
        }
        fn hardlink(self, path: &str, target: &str) -> Self {
            self.add(path, EntryType::Link, Some(target), b"")
        }
        fn bytes(mut self) -> Vec<u8> {
            self.0.extend_from_slice(&[0u8; 1024]);
            self.0
        }
    }

    /// A sandbox: `outside/` next to `layer/`, to detect escapes.
    struct Sandbox {
        _dir: tempfile::TempDir,
        layer: PathBuf,
        outside: PathBuf,
    }

    fn sandbox() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        let outside = dir.path().join("outside");
        fs::create_dir(&layer).unwrap();
        fs::create_dir(&outside).unwrap();
        Sandbox {
            _dir: dir,
            layer,
            outside,
        }
    }

    fn outside_is_empty(s: &Sandbox) -> bool {
        fs::read_dir(&s.outside).unwrap().next().is_none()
            && fs::symlink_metadata(s.layer.parent().unwrap().join("evil")).is_err()
    }

    #[test]
    fn files_dirs_links_and_metadata_are_kept() {
        let s = sandbox();
        let tar = Tar::new()
            .dir("etc/")
            .file("etc/passwd", b"root:x:0:0\n")
            .symlink("bin/sh", "/bin/busybox")
            .hardlink("etc/passwd2", "etc/passwd")
            .bytes();
        let st = unpack(&tar[..], &s.layer).unwrap();
        assert_eq!(st.size, 11 + "/bin/busybox".len() as u64);
        assert_eq!(
            fs::read(s.layer.join("etc/passwd2")).unwrap(),
            b"root:x:0:0\n"
        );
        let m = fs::metadata(s.layer.join("etc/passwd")).unwrap();
        assert_eq!(m.nlink(), 2);
        assert_eq!(m.mode() & 0o777, 0o644);
        assert_eq!(m.mtime(), 1_600_000_000);
        assert_eq!(
            fs::metadata(s.layer.join("etc")).unwrap().mtime(),
            1_600_000_000
        );
        assert_eq!(
            fs::read_link(s.layer.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let s = sandbox();
        let tar = Tar::new()
            .file("etc/.wh.motd", b"")
            .dir("var/cache/")
            .file("var/cache/.wh..wh..opq", b"")
            .file("var/cache/new", b"x")
            .bytes();
        unpack(&tar[..], &s.layer).unwrap();
        let m = fs::symlink_metadata(s.layer.join("etc/motd")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), 0);
        assert!(fs::symlink_metadata(s.layer.join("etc/.wh.motd")).is_err());
        let opq = xattr::get(s.layer.join("var/cache"), OPAQUE_XATTR).unwrap();
        assert_eq!(opq.as_deref(), Some(&b"y"[..]));
        assert!(s.layer.join("var/cache/new").exists());
        assert!(fs::symlink_metadata(s.layer.join("var/cache/.wh..wh..opq")).is_err());
    }

    /// Found by the API fuzzer: a body that is not a tar (a PNG) was a 500 for `docker build`
    /// and `docker load`, truncated data too.
    #[test]
    fn streams_that_are_not_tars_are_client_errors() {
        let s = sandbox();
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\0\0\0\0:~\x9bU";
        let mut padded = png.to_vec();
        padded.resize(1024, 0);
        let truncated = Tar::new().file("f", &[7u8; 2000]).bytes()[..1200].to_vec();
        for bad in [&png[..], &padded[..], &truncated[..]] {
            let e = unpack(bad, &s.layer).unwrap_err();
            assert_eq!(
                e.kind(),
                crate::ErrorKind::InvalidArgument,
                "{}",
                e.message()
            );
        }
    }

    #[test]
    fn dotdot_paths_are_refused() {
        let s = sandbox();
        let tar = Tar::new().file("../evil", b"x").bytes();
        assert!(unpack(&tar[..], &s.layer).is_err());
        let tar = Tar::new().file("a/../../evil", b"x").bytes();
        assert!(unpack(&tar[..], &s.layer).is_err());
        assert!(outside_is_empty(&s));
    }

    #[test]
    fn absolute_paths_stay_inside() {
        let s = sandbox();
        let abs = format!("{}/abs", s.outside.display());
        let tar = Tar::new().file(&abs, b"x").file("/etc/hosts", b"h").bytes();
        unpack(&tar[..], &s.layer).unwrap();
        assert!(outside_is_empty(&s));
        assert_eq!(fs::read(s.layer.join("etc/hosts")).unwrap(), b"h");
        assert!(s.layer.join(abs.trim_start_matches('/')).exists());
    }

    #[test]
    fn writes_through_symlinked_dirs_are_refused() {
        for target in ["../outside".to_string(), String::new()] {
            let s = sandbox();
            let target = if target.is_empty() {
                s.outside.display().to_string()
            } else {
                target
            };
            let tar = Tar::new()
                .symlink("link", &target)
                .file("link/pwned", b"x")
                .bytes();
            assert!(unpack(&tar[..], &s.layer).is_err(), "{target}");
            assert!(outside_is_empty(&s), "{target}");
        }
    }

    #[test]
    fn files_replace_symlinks_instead_of_writing_through() {
        let s = sandbox();
        let victim = s.outside.join("victim");
        let tar = Tar::new()
            .symlink("f", &victim.display().to_string())
            .file("f", b"new")
            .bytes();
        unpack(&tar[..], &s.layer).unwrap();
        assert!(outside_is_empty(&s));
        let m = fs::symlink_metadata(s.layer.join("f")).unwrap();
        assert!(m.file_type().is_file());
    }

    #[test]
    fn whiteout_through_symlink_is_refused() {
        let s = sandbox();
        fs::write(s.outside.join("keep"), b"k").unwrap();
        let tar = Tar::new()
            .symlink("d", &s.outside.display().to_string())
            .file("d/.wh.keep", b"")
            .bytes();
        assert!(unpack(&tar[..], &s.layer).is_err());
        assert!(s.outside.join("keep").is_file());
        let tar = Tar::new()
            .symlink("o", &s.outside.display().to_string())
            .file("o/.wh..wh..opq", b"")
            .bytes();
        let s2 = sandbox();
        assert!(unpack(&tar[..], &s2.layer).is_err());
    }

    #[test]
    fn hardlinks_out_of_the_layer_are_refused() {
        let s = sandbox();
        fs::write(s.outside.join("secret"), b"s").unwrap();
        let tar = Tar::new().hardlink("h", "../outside/secret").bytes();
        assert!(unpack(&tar[..], &s.layer).is_err());
        // Through a symlinked directory inside the layer.
        let tar = Tar::new()
            .symlink("l", &s.outside.display().to_string())
            .hardlink("h", "l/secret")
            .bytes();
        assert!(unpack(&tar[..], &s.layer).is_err());
        assert!(fs::symlink_metadata(s.layer.join("h")).is_err());
        // An absolute target means the layer's own path, not the host's.
        let abs = s.outside.join("secret").display().to_string();
        let s2 = sandbox();
        let tar = Tar::new().hardlink("h", &abs).bytes();
        let st = unpack(&tar[..], &s2.layer).unwrap();
        assert_eq!(st.skipped, 1);
        assert!(fs::symlink_metadata(s2.layer.join("h")).is_err());
        assert_eq!(fs::metadata(s.outside.join("secret")).unwrap().nlink(), 1);
    }

    #[test]
    fn device_nodes_are_skipped() {
        let s = sandbox();
        let mut t = Tar::new();
        let mut h = tar::Header::new_gnu();
        h.set_path("dev/sda").unwrap();
        h.set_entry_type(EntryType::Block);
        h.set_device_major(8).unwrap();
        h.set_device_minor(0).unwrap();
        h.set_size(0);
        h.set_mode(0o600);
        h.set_cksum();
        t.0.extend_from_slice(h.as_bytes());
        let st = unpack(&t.file("ok", b"1").bytes()[..], &s.layer).unwrap();
        assert_eq!(st.skipped, 1);
        assert!(fs::symlink_metadata(s.layer.join("dev/sda")).is_err());
        assert!(s.layer.join("ok").is_file());
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let s = sandbox();
        let tar = Tar::new()
            .dir("a/")
            .file("a/x", b"1")
            .file("a", b"file now")
            .dir("a/")
            .file("a/y", b"2")
            .bytes();
        unpack(&tar[..], &s.layer).unwrap();
        assert!(s.layer.join("a/y").is_file());
        assert!(!s.layer.join("a/x").exists());
    }

    #[test]
    fn copies_walk_through_dir_symlinks_only_when_asked() {
        let s = sandbox();
        fs::create_dir_all(s.layer.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", s.layer.join("bin")).unwrap();
        let tar = Tar::new().file("bin/tool", b"t").bytes();
        assert!(unpack(&tar[..], &s.layer).is_err());
        let opts = UnpackOptions {
            whiteouts: false,
            owner: Some((0, 0)),
            no_overwrite_dir_non_dir: true,
            follow_dir_symlinks: true,
        };
        unpack_with(&tar[..], &s.layer, opts).unwrap();
        assert_eq!(fs::read(s.layer.join("usr/bin/tool")).unwrap(), b"t");
        // A directory does not replace a file, nor a file a directory.
        let tar = Tar::new().file("usr", b"x").bytes();
        assert!(unpack_with(&tar[..], &s.layer, opts).is_err());
        let tar = Tar::new().dir("usr/bin/tool/").bytes();
        assert!(unpack_with(&tar[..], &s.layer, opts).is_err());
        // Whiteout names are plain files in a copy.
        let tar = Tar::new().file(".wh.keep", b"w").bytes();
        unpack_with(&tar[..], &s.layer, opts).unwrap();
        assert!(s.layer.join(".wh.keep").is_file());
    }

    #[test]
    fn pax_xattrs_are_applied() {
        let s = sandbox();
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("SCHILY.xattr.user.berth", &b"v"[..])])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        h.set_mode(0o4755);
        h.set_entry_type(EntryType::Regular);
        b.append_data(&mut h, "bin/su", &b"x"[..]).unwrap();
        let data = b.into_inner().unwrap();
        unpack(&data[..], &s.layer).unwrap();
        let p = s.layer.join("bin/su");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o4755);
        // tmpfs may lack user xattrs; check only where the filesystem supports them.
        if let Ok(Some(v)) = xattr::get(&p, "user.berth") {
            assert_eq!(v, b"v");
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Entry names and link targets from the parts that have let archives escape.
        fn name() -> impl Strategy<Value = String> {
            (
                prop::sample::select(vec!["", "/", "./"]),
                prop::collection::vec(
                    prop::sample::select(vec![
                        "a",
                        "b",
                        "..",
                        ".",
                        "outside",
                        "secret",
                        ".wh.a",
                        ".wh..wh..opq",
                    ]),
                    1..4,
                ),
            )
                .prop_map(|(lead, parts)| format!("{lead}{}", parts.join("/")))
        }

        #[derive(Debug, Clone)]
        enum Kind {
            File,
            Dir,
            Symlink(String),
            Hardlink(String),
        }

        /// A symlink target: a name, or the sandbox's `outside/` by absolute path.
        fn kind() -> impl Strategy<Value = Kind> {
            prop_oneof![
                Just(Kind::File),
                Just(Kind::Dir),
                prop_oneof![name(), Just("@outside".to_string())].prop_map(Kind::Symlink),
                name().prop_map(Kind::Hardlink),
            ]
        }

        fn archive(entries: &[(String, Kind)], outside: &Path) -> Vec<u8> {
            let outside = outside.display().to_string();
            let mut t = Tar::new();
            for (path, kind) in entries {
                t = match kind {
                    Kind::File => t.file(path, b"pwned"),
                    Kind::Dir => t.dir(path),
                    Kind::Symlink(to) => t.symlink(path, &to.replace("@outside", &outside)),
                    Kind::Hardlink(to) => t.hardlink(path, to),
                };
            }
            t.bytes()
        }

        /// Nothing next to the layer but `layer/` and `outside/`, which holds only its
        /// untouched `secret`.
        fn nothing_escaped(s: &Sandbox) -> Result<(), TestCaseError> {
            let parent = s.layer.parent().unwrap();
            let mut names: Vec<_> = fs::read_dir(parent)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            prop_assert_eq!(names, vec![OsStr::new("layer"), OsStr::new("outside")]);
            let inside: Vec<_> = fs::read_dir(&s.outside)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            prop_assert_eq!(inside, vec![OsStr::new("secret")]);
            let secret = s.outside.join("secret");
            prop_assert!(fs::symlink_metadata(&secret).unwrap().file_type().is_file());
            prop_assert_eq!(fs::read(&secret).unwrap(), b"s");
            prop_assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

            /// However entries are named and linked, unpacking (as a layer or as a `docker cp`
            /// archive) succeeds or fails without writing outside the root.
            #[test]
            fn no_entry_escapes_the_root(entries in prop::collection::vec((name(), kind()), 1..8), copy in any::<bool>()) {
                let s = sandbox();
                fs::write(s.outside.join("secret"), b"s").unwrap();
                let opts = if copy {
                    UnpackOptions { whiteouts: false, no_overwrite_dir_non_dir: true, ..UnpackOptions::default() }
                } else {
                    UnpackOptions::default()
                };
                let _ = unpack_with(&archive(&entries, &s.outside)[..], &s.layer, opts);
                nothing_escaped(&s)?;
            }
        }
    }
}
