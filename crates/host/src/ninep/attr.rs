//! File attributes as 9P2000.L carries them (`Rgetattr`, `Tsetattr`), from and to the host's
//! own: POSIX ones on unix, synthesised on Windows (no owner or mode bits: files are shown as
//! root's, read-write-execute unless read-only, as Docker Desktop shows Windows folders).

use std::fs::{self, File, FileTimes, Metadata};
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::wire::{Out, Qid, SetAttr, QT_DIR, QT_FILE, QT_SYMLINK};

/// `Rgetattr` valid bits: mode … blocks (`P9_GETATTR_BASIC`).
pub const GETATTR_BASIC: u64 = 0x7ff;

/// `Tsetattr` valid bits.
pub mod set {
    pub const MODE: u32 = 0x1;
    pub const UID: u32 = 0x2;
    pub const GID: u32 = 0x4;
    pub const SIZE: u32 = 0x8;
    pub const ATIME: u32 = 0x10;
    pub const MTIME: u32 = 0x20;
    pub const ATIME_SET: u32 = 0x80;
    pub const MTIME_SET: u32 = 0x100;
}

/// Linux `d_type` values of `Rreaddir` entries.
pub const DT_DIR: u8 = 4;
pub const DT_REG: u8 = 8;
pub const DT_LNK: u8 = 10;

/// The qid of a file with metadata `md` known by `path` (an inode number on unix, an id per
/// path elsewhere).
pub fn qid(md: &Metadata, path: u64) -> Qid {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        QT_DIR
    } else if ft.is_symlink() {
        QT_SYMLINK
    } else {
        QT_FILE
    };
    let version = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as u32);
    Qid {
        kind,
        version,
        path,
    }
}

/// `d_type` of an entry.
pub fn dirent_type(ft: fs::FileType) -> u8 {
    if ft.is_dir() {
        DT_DIR
    } else if ft.is_symlink() {
        DT_LNK
    } else {
        DT_REG
    }
}

fn time_pair(t: io::Result<SystemTime>) -> (u64, u64) {
    t.ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or((0, 0), |d| (d.as_secs(), u64::from(d.subsec_nanos())))
}

/// Owner, group, mode, links, device, block size and blocks of `md`.
#[cfg(unix)]
fn posix(md: &Metadata) -> [u64; 7] {
    use std::os::unix::fs::MetadataExt;
    [
        md.uid().into(),
        md.gid().into(),
        md.mode().into(),
        md.nlink(),
        md.rdev(),
        md.blksize(),
        md.blocks(),
    ]
}

#[cfg(not(unix))]
fn posix(md: &Metadata) -> [u64; 7] {
    let ft = md.file_type();
    let kind: u64 = if ft.is_dir() {
        0o040000
    } else if ft.is_symlink() {
        0o120000
    } else {
        0o100000
    };
    let perm = if md.permissions().readonly() {
        0o555
    } else {
        0o777
    };
    [0, 0, kind | perm, 1, 0, 4096, md.len().div_ceil(512)]
}

#[cfg(unix)]
fn ctime(md: &Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (md.ctime() as u64, md.ctime_nsec() as u64)
}

#[cfg(not(unix))]
fn ctime(md: &Metadata) -> (u64, u64) {
    time_pair(md.modified())
}

/// The `Rgetattr` body of `md`.
pub fn getattr_body(md: &Metadata, q: Qid) -> Out {
    let [uid, gid, mode, nlink, rdev, blksize, blocks] = posix(md);
    let mut o = Out::default();
    o.u64(GETATTR_BASIC)
        .qid(q)
        .u32(mode as u32)
        .u32(uid as u32)
        .u32(gid as u32);
    o.u64(nlink)
        .u64(rdev)
        .u64(md.len())
        .u64(blksize)
        .u64(blocks);
    for (s, n) in [
        time_pair(md.accessed()),
        time_pair(md.modified()),
        ctime(md),
    ] {
        o.u64(s).u64(n);
    }
    // btime, gen, data_version: not in the basic set.
    o.u64(0).u64(0).u64(0).u64(0);
    o
}

/// Applies `Tsetattr` to `path`.
pub fn setattr(path: &Path, a: &SetAttr) -> io::Result<()> {
    if a.valid & set::MODE != 0 {
        set_mode(path, a.mode)?;
    }
    if a.valid & (set::UID | set::GID) != 0 {
        set_owner(path, a)?;
    }
    if a.valid & set::SIZE != 0 {
        fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(a.size)?;
    }
    if a.valid & (set::ATIME | set::MTIME) != 0 {
        let pick = |given: bool, (s, n): (u64, u64)| {
            if given {
                UNIX_EPOCH + Duration::new(s, n as u32)
            } else {
                SystemTime::now()
            }
        };
        let mut t = FileTimes::new();
        if a.valid & set::ATIME != 0 {
            t = t.set_accessed(pick(a.valid & set::ATIME_SET != 0, a.atime));
        }
        if a.valid & set::MTIME != 0 {
            t = t.set_modified(pick(a.valid & set::MTIME_SET != 0, a.mtime));
        }
        open_for_times(path)?.set_times(t)?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
}

#[cfg(not(unix))]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    let mut p = fs::metadata(path)?.permissions();
    p.set_readonly(mode & 0o222 == 0);
    fs::set_permissions(path, p)
}

/// Changes the owner where the host allows it. A host user who may not (macOS, a user
/// session) keeps the file's owner and the call succeeds, as Docker Desktop's shares do.
#[cfg(unix)]
fn set_owner(path: &Path, a: &SetAttr) -> io::Result<()> {
    let uid = (a.valid & set::UID != 0).then_some(a.uid);
    let gid = (a.valid & set::GID != 0).then_some(a.gid);
    match std::os::unix::fs::lchown(path, uid, gid) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        r => r,
    }
}

#[cfg(not(unix))]
fn set_owner(_path: &Path, _a: &SetAttr) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn open_for_times(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// Windows: times need FILE_WRITE_ATTRIBUTES, and a folder opens only with backup semantics.
#[cfg(windows)]
fn open_for_times(path: &Path) -> io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_WRITE_ATTRIBUTES: u32 = 0x100;
    const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
    fs::OpenOptions::new()
        .access_mode(FILE_WRITE_ATTRIBUTES)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ninep::wire::Fields;

    #[test]
    fn getattr_of_a_file_says_its_size_kind_and_mtime() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        fs::write(&p, b"hello").unwrap();
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let a = SetAttr {
            valid: set::MTIME | set::MTIME_SET,
            mtime: (1_700_000_000, 5),
            ..Default::default()
        };
        setattr(&p, &a).unwrap();
        let md = fs::symlink_metadata(&p).unwrap();
        assert_eq!(md.modified().unwrap(), t);
        let o = getattr_body(&md, qid(&md, 7));
        let mut f = Fields::new(&o.0);
        assert_eq!(f.u64().unwrap(), GETATTR_BASIC);
        assert_eq!(f.qid().unwrap().path, 7);
        assert_eq!(f.u32().unwrap() & 0o170000, 0o100000);
        let (_uid, _gid, _nlink, _rdev) = (f.u32(), f.u32(), f.u64(), f.u64());
        assert_eq!(f.u64().unwrap(), 5);
    }

    #[test]
    fn setattr_truncates_and_clears_write_bits() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        fs::write(&p, b"hello").unwrap();
        let a = SetAttr {
            valid: set::SIZE,
            size: 2,
            ..Default::default()
        };
        setattr(&p, &a).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"he");
        let a = SetAttr {
            valid: set::MODE,
            mode: 0o444,
            ..Default::default()
        };
        setattr(&p, &a).unwrap();
        assert!(fs::metadata(&p).unwrap().permissions().readonly());
    }
}
