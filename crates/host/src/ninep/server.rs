//! The request loop and the file operations of one share: fids are paths below the share's
//! root (never `..` above it, never through a symlink: the guest's kernel resolves links
//! itself, by `readlink` and a new walk), opened files and directory listings hang off them.
//! Requests are answered in order on one thread; the guest's kernel pipelines them.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::attr;
use super::errno::{self, EBADF, EINVAL, EISDIR, ENOTDIR, EOPNOTSUPP};
use super::ids::Ids;
use super::wire::{self, kind, Frame, Out, Qid, Request, SetAttr, IO_HEADER};

/// Largest message this server takes or sends (the client asks for up to 512 KiB by default).
pub const MAX_MSIZE: u32 = 512 * 1024;

/// Linux open flags that matter here (`P9_DOTL_*` are Linux's own values).
const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_EXCL: u32 = 0o200;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;
/// `Tunlinkat` flag: the name is a directory.
const AT_REMOVEDIR: u32 = 0x200;
/// `Rgetlock` type: no lock held (`F_UNLCK`).
const F_UNLCK: u8 = 2;
/// `Rstatfs` type: v9fs's magic.
const V9FS_MAGIC: u32 = 0x0102_1997;

/// An error answered as `Rlerror`.
type OpResult<T> = Result<T, u32>;

fn io_err(e: io::Error) -> u32 {
    errno::of(&e)
}

/// What a fid names, and what is open on it.
struct Fid {
    /// Components below the root.
    rel: Vec<String>,
    open: Option<Opened>,
}

enum Opened {
    File(File),
    /// A directory's entries as listed at offset 0: (qid, type, name).
    Dir(Option<Vec<(Qid, u8, String)>>),
}

/// One share's server state.
pub struct Server {
    root: PathBuf,
    msize: u32,
    fids: HashMap<u32, Fid>,
    ids: Ids,
}

impl Server {
    pub fn new(root: PathBuf) -> Self {
        Server {
            root,
            msize: MAX_MSIZE,
            fids: HashMap::new(),
            ids: Ids::default(),
        }
    }

    /// Serves requests from `r`, replies to `w`, until the client closes the stream.
    pub fn serve(mut self, mut r: impl Read, mut w: impl Write) -> io::Result<()> {
        while let Some(frame) = wire::read_frame(&mut r, MAX_MSIZE)? {
            let (rkind, body) = self.answer(&frame);
            wire::write_frame(&mut w, rkind, frame.tag, &body.0)?;
        }
        Ok(())
    }

    /// The reply to one frame: its type and fields.
    pub fn answer(&mut self, frame: &Frame) -> (u8, Out) {
        let result = match wire::decode(frame) {
            Ok(req) => {
                tracing::trace!(?req, "9p");
                self.handle(req)
            }
            Err(wire::DecodeError::Malformed(e)) => {
                tracing::debug!(kind = frame.kind, error = %e, "9p: malformed request");
                Err(EINVAL)
            }
            Err(wire::DecodeError::UnknownType(_)) => Err(EOPNOTSUPP),
        };
        match result {
            Ok(body) => (frame.kind + 1, body),
            Err(code) => {
                let mut o = Out::default();
                o.u32(code);
                (kind::RLERROR, o)
            }
        }
    }

    fn handle(&mut self, req: Request) -> OpResult<Out> {
        match req {
            Request::Version { msize, version } => Ok(self.version(msize, &version)),
            Request::Attach { fid, .. } => self.attach(fid),
            Request::Auth | Request::Mknod | Request::Xattrwalk | Request::Xattrcreate => {
                Err(EOPNOTSUPP)
            }
            Request::Flush => Ok(Out::default()),
            Request::Walk { fid, newfid, names } => self.walk(fid, newfid, &names),
            Request::Clunk { fid } => self.fids.remove(&fid).map(|_| Out::default()).ok_or(EBADF),
            Request::Remove { fid } => self.remove(fid),
            Request::Statfs { fid } => self.statfs(fid),
            Request::Lopen { fid, flags } => self.lopen(fid, flags),
            Request::Lcreate {
                fid,
                name,
                flags,
                mode,
            } => self.lcreate(fid, &name, flags, mode),
            Request::Symlink { fid, name, target } => self.symlink(fid, &name, &target),
            Request::Rename { fid, dfid, name } => self.rename(fid, dfid, &name),
            Request::Readlink { fid } => self.readlink(fid),
            Request::Getattr { fid, .. } => self.getattr(fid),
            Request::Setattr { fid, attr } => self.setattr(fid, &attr),
            Request::Readdir { fid, offset, count } => self.readdir(fid, offset, count),
            Request::Fsync { fid } => self.fsync(fid),
            Request::Lock => {
                let mut o = Out::default();
                o.u8(0);
                Ok(o)
            }
            Request::Getlock {
                start,
                length,
                proc_id,
                client,
                ..
            } => {
                let mut o = Out::default();
                o.u8(F_UNLCK)
                    .u64(start)
                    .u64(length)
                    .u32(proc_id)
                    .str(&client);
                Ok(o)
            }
            Request::Link { dfid, fid, name } => self.link(dfid, fid, &name),
            Request::Mkdir { dfid, name, mode } => self.mkdir(dfid, &name, mode),
            Request::Renameat {
                olddir,
                oldname,
                newdir,
                newname,
            } => {
                let from = self.child(olddir, &oldname)?;
                let to = self.child(newdir, &newname)?;
                fs::rename(from, to).map_err(io_err)?;
                Ok(Out::default())
            }
            Request::Unlinkat { dir, name, flags } => {
                let p = self.child(dir, &name)?;
                if flags & AT_REMOVEDIR != 0 {
                    fs::remove_dir(p)
                } else {
                    fs::remove_file(p)
                }
                .map_err(io_err)?;
                Ok(Out::default())
            }
            Request::Read { fid, offset, count } => self.read(fid, offset, count),
            Request::Write { fid, offset, data } => self.write(fid, offset, &data),
        }
    }

    fn version(&mut self, msize: u32, version: &str) -> Out {
        self.fids.clear();
        self.msize = msize.clamp(4096, MAX_MSIZE);
        let mut o = Out::default();
        let v = if version.starts_with("9P2000.L") {
            "9P2000.L"
        } else {
            "unknown"
        };
        o.u32(self.msize).str(v);
        o
    }

    fn iounit(&self) -> u32 {
        self.msize - IO_HEADER
    }

    fn path_of(&self, rel: &[String]) -> PathBuf {
        rel.iter().fold(self.root.clone(), |p, c| p.join(c))
    }

    fn fid(&self, fid: u32) -> OpResult<&Fid> {
        self.fids.get(&fid).ok_or(EBADF)
    }

    fn path(&self, fid: u32) -> OpResult<PathBuf> {
        Ok(self.path_of(&self.fid(fid)?.rel))
    }

    /// The path of `name` in directory `dir`, refusing names that are not one component.
    fn child(&self, dir: u32, name: &str) -> OpResult<PathBuf> {
        check_name(name)?;
        Ok(self.path(dir)?.join(name))
    }

    fn qid_of(&mut self, p: &Path) -> OpResult<(Qid, fs::Metadata)> {
        let md = fs::symlink_metadata(p).map_err(io_err)?;
        let id = self.ids.of(p, &md);
        Ok((attr::qid(&md, id), md))
    }

    fn qid_body(&mut self, p: &Path, iounit: Option<u32>) -> OpResult<Out> {
        let (q, _) = self.qid_of(p)?;
        let mut o = Out::default();
        o.qid(q);
        if let Some(n) = iounit {
            o.u32(n);
        }
        Ok(o)
    }

    fn attach(&mut self, fid: u32) -> OpResult<Out> {
        let root = self.root.clone();
        let body = self.qid_body(&root, None)?;
        self.fids.insert(
            fid,
            Fid {
                rel: Vec::new(),
                open: None,
            },
        );
        Ok(body)
    }

    /// Walks `names` from `fid`; a partial walk answers the qids it got and makes no `newfid`.
    fn walk(&mut self, fid: u32, newfid: u32, names: &[String]) -> OpResult<Out> {
        let mut rel = self.fid(fid)?.rel.clone();
        let mut qids = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let step = self.walk_one(&rel, name);
            match step {
                Ok((next, q)) => {
                    rel = next;
                    qids.push(q);
                }
                Err(e) if i == 0 => return Err(e),
                Err(_) => break,
            }
        }
        if qids.len() == names.len() {
            self.fids.insert(newfid, Fid { rel, open: None });
        }
        let mut o = Out::default();
        o.u16(qids.len() as u16);
        for q in qids {
            o.qid(q);
        }
        Ok(o)
    }

    fn walk_one(&mut self, rel: &[String], name: &str) -> OpResult<(Vec<String>, Qid)> {
        let here = self.path_of(rel);
        if !fs::symlink_metadata(&here).map_err(io_err)?.is_dir() {
            return Err(ENOTDIR);
        }
        let mut next = rel.to_vec();
        match name {
            ".." => {
                next.pop();
            }
            "." => {}
            _ => {
                check_name(name)?;
                next.push(name.to_string());
            }
        }
        let (q, _) = self.qid_of(&self.path_of(&next))?;
        Ok((next, q))
    }

    fn lopen(&mut self, fid: u32, flags: u32) -> OpResult<Out> {
        let p = self.path(fid)?;
        let md = fs::symlink_metadata(&p).map_err(io_err)?;
        let opened = if md.is_dir() {
            Opened::Dir(None)
        } else {
            Opened::File(open_options(flags).open(&p).map_err(io_err)?)
        };
        let body = self.qid_body(&p, Some(self.iounit()))?;
        self.fids.get_mut(&fid).ok_or(EBADF)?.open = Some(opened);
        Ok(body)
    }

    fn lcreate(&mut self, fid: u32, name: &str, flags: u32, mode: u32) -> OpResult<Out> {
        let p = self.child(fid, name)?;
        let mut opts = open_options(flags);
        if flags & O_EXCL != 0 {
            opts.create_new(true);
        } else {
            opts.create(true);
        }
        if flags & O_ACCMODE == 0 {
            // Creating needs write access on the host; the guest asked for read only.
            opts.write(true);
        }
        with_mode(&mut opts, mode);
        let file = opts.open(&p).map_err(io_err)?;
        let body = self.qid_body(&p, Some(self.iounit()))?;
        let f = self.fids.get_mut(&fid).ok_or(EBADF)?;
        f.rel.push(name.to_string());
        f.open = Some(Opened::File(file));
        Ok(body)
    }

    fn mkdir(&mut self, dfid: u32, name: &str, mode: u32) -> OpResult<Out> {
        let p = self.child(dfid, name)?;
        make_dir(&p, mode).map_err(io_err)?;
        self.qid_body(&p, None)
    }

    fn symlink(&mut self, fid: u32, name: &str, target: &str) -> OpResult<Out> {
        let p = self.child(fid, name)?;
        make_symlink(target, &p)?;
        self.qid_body(&p, None)
    }

    fn link(&mut self, dfid: u32, fid: u32, name: &str) -> OpResult<Out> {
        let to = self.child(dfid, name)?;
        fs::hard_link(self.path(fid)?, to).map_err(io_err)?;
        Ok(Out::default())
    }

    fn rename(&mut self, fid: u32, dfid: u32, name: &str) -> OpResult<Out> {
        let to = self.child(dfid, name)?;
        fs::rename(self.path(fid)?, to).map_err(io_err)?;
        let mut rel = self.fid(dfid)?.rel.clone();
        rel.push(name.to_string());
        self.fids.get_mut(&fid).ok_or(EBADF)?.rel = rel;
        Ok(Out::default())
    }

    fn remove(&mut self, fid: u32) -> OpResult<Out> {
        let p = self.path(fid)?;
        // The fid is clunked whether or not the removal worked.
        self.fids.remove(&fid);
        let md = fs::symlink_metadata(&p).map_err(io_err)?;
        if md.is_dir() {
            fs::remove_dir(&p)
        } else {
            fs::remove_file(&p)
        }
        .map_err(io_err)?;
        Ok(Out::default())
    }

    fn readlink(&mut self, fid: u32) -> OpResult<Out> {
        let target = fs::read_link(self.path(fid)?).map_err(io_err)?;
        let mut o = Out::default();
        o.str(&target.to_string_lossy());
        Ok(o)
    }

    fn getattr(&mut self, fid: u32) -> OpResult<Out> {
        let p = self.path(fid)?;
        let (q, md) = self.qid_of(&p)?;
        Ok(attr::getattr_body(&md, q))
    }

    fn setattr(&mut self, fid: u32, a: &SetAttr) -> OpResult<Out> {
        attr::setattr(&self.path(fid)?, a).map_err(io_err)?;
        Ok(Out::default())
    }

    fn fsync(&mut self, fid: u32) -> OpResult<Out> {
        if let Some(Opened::File(f)) = &self.fid(fid)?.open {
            f.sync_all().map_err(io_err)?;
        }
        Ok(Out::default())
    }

    fn statfs(&mut self, fid: u32) -> OpResult<Out> {
        let s = space::of(&self.path(fid)?).map_err(io_err)?;
        let mut o = Out::default();
        o.u32(V9FS_MAGIC).u32(s.bsize);
        o.u64(s.blocks)
            .u64(s.bfree)
            .u64(s.bavail)
            .u64(s.files)
            .u64(s.ffree);
        o.u64(0).u32(255);
        Ok(o)
    }

    fn open_file(&self, fid: u32) -> OpResult<&File> {
        match &self.fid(fid)?.open {
            Some(Opened::File(f)) => Ok(f),
            Some(Opened::Dir(_)) => Err(EISDIR),
            None => Err(EBADF),
        }
    }

    fn read(&mut self, fid: u32, offset: u64, count: u32) -> OpResult<Out> {
        let count = count.min(self.iounit()) as usize;
        let f = self.open_file(fid)?;
        let mut buf = vec![0u8; count];
        let n = read_at(f, &mut buf, offset).map_err(io_err)?;
        let mut o = Out::default();
        o.u32(n as u32);
        o.0.extend_from_slice(&buf[..n]);
        Ok(o)
    }

    fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> OpResult<Out> {
        let f = self.open_file(fid)?;
        let n = write_at(f, data, offset).map_err(io_err)?;
        let mut o = Out::default();
        o.u32(n as u32);
        Ok(o)
    }

    /// Entries from `offset` (an entry's index + 1, 0 = start again) that fit in `count`.
    fn readdir(&mut self, fid: u32, offset: u64, count: u32) -> OpResult<Out> {
        let p = self.path(fid)?;
        let fresh = match &self.fid(fid)?.open {
            Some(Opened::Dir(listed)) => offset == 0 || listed.is_none(),
            _ => return Err(EBADF),
        };
        if fresh {
            let entries = self.list(&p)?;
            self.fids.get_mut(&fid).ok_or(EBADF)?.open = Some(Opened::Dir(Some(entries)));
        }
        let Some(Opened::Dir(Some(entries))) = &self.fid(fid)?.open else {
            return Err(EBADF);
        };
        let mut data = Out::default();
        for (i, (q, t, name)) in entries.iter().enumerate().skip(offset as usize) {
            let len = 13 + 8 + 1 + 2 + name.len();
            if 4 + data.0.len() + len > count as usize {
                break;
            }
            data.qid(*q).u64(i as u64 + 1).u8(*t).str(name);
        }
        let mut o = Out::default();
        o.u32(data.0.len() as u32);
        o.0.extend_from_slice(&data.0);
        Ok(o)
    }

    /// `.`, `..` and the directory's entries.
    fn list(&mut self, dir: &Path) -> OpResult<Vec<(Qid, u8, String)>> {
        let mut out = Vec::new();
        for name in [".", ".."] {
            let (q, _) = self.qid_of(dir)?;
            out.push((q, attr::DT_DIR, name.to_string()));
        }
        for e in fs::read_dir(dir).map_err(io_err)? {
            let e = e.map_err(io_err)?;
            let Ok(md) = e.metadata() else { continue };
            let path = e.path();
            let id = self.ids.of(&path, &md);
            let name = e.file_name().to_string_lossy().into_owned();
            out.push((attr::qid(&md, id), attr::dirent_type(md.file_type()), name));
        }
        Ok(out)
    }
}

/// One path component: not empty, `.` or `..`, and without separators or NUL.
fn check_name(name: &str) -> OpResult<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\0'])
        || (cfg!(windows) && name.contains(['\\', ':']));
    if bad {
        Err(EINVAL)
    } else {
        Ok(())
    }
}

fn open_options(flags: u32) -> OpenOptions {
    let mut o = OpenOptions::new();
    match flags & O_ACCMODE {
        O_WRONLY => o.write(true),
        O_RDWR => o.read(true).write(true),
        _ => o.read(true),
    };
    if flags & O_TRUNC != 0 {
        o.write(true).truncate(true);
    }
    if flags & O_APPEND != 0 {
        o.append(true);
    }
    o
}

#[cfg(unix)]
fn with_mode(o: &mut OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    o.mode(mode & 0o7777);
}

#[cfg(not(unix))]
fn with_mode(_o: &mut OpenOptions, _mode: u32) {}

#[cfg(unix)]
fn make_dir(p: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(mode & 0o7777).create(p)
}

#[cfg(not(unix))]
fn make_dir(p: &Path, _mode: u32) -> io::Result<()> {
    fs::create_dir(p)
}

#[cfg(unix)]
fn make_symlink(target: &str, p: &Path) -> OpResult<()> {
    std::os::unix::fs::symlink(target, p).map_err(io_err)
}

/// Windows symlinks need a privilege a user session rarely has, and a file-or-folder choice
/// the guest's `symlink(2)` does not make: refused as a filesystem without links would.
#[cfg(not(unix))]
fn make_symlink(_target: &str, _p: &Path) -> OpResult<()> {
    Err(errno::EPERM)
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, off)
}

#[cfg(windows)]
fn read_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, off)
}

#[cfg(unix)]
fn write_at(f: &File, buf: &[u8], off: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::write_at(f, buf, off)
}

#[cfg(windows)]
fn write_at(f: &File, buf: &[u8], off: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_write(f, buf, off)
}

/// Free space of the share's filesystem, for `df` in the guest.
mod space {
    use std::io;
    use std::path::Path;

    pub(super) struct Space {
        pub bsize: u32,
        pub blocks: u64,
        pub bfree: u64,
        pub bavail: u64,
        pub files: u64,
        pub ffree: u64,
    }

    #[cfg(unix)]
    pub(super) fn of(p: &Path) -> io::Result<Space> {
        let s = nix::sys::statvfs::statvfs(p).map_err(io::Error::from)?;
        Ok(Space {
            bsize: s.fragment_size() as u32,
            blocks: s.blocks() as u64,
            bfree: s.blocks_free() as u64,
            bavail: s.blocks_available() as u64,
            files: s.files() as u64,
            ffree: s.files_free() as u64,
        })
    }

    #[cfg(windows)]
    pub(super) fn of(p: &Path) -> io::Result<Space> {
        use std::os::windows::ffi::OsStrExt;
        use windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW;
        let wide: Vec<u16> = p.as_os_str().encode_wide().chain([0]).collect();
        let (mut avail, mut total, mut free) = (0u64, 0u64, 0u64);
        // SAFETY: `wide` is NUL-terminated and the three outputs are valid for writes.
        let ok = unsafe { GetDiskFreeSpaceExW(wide.as_ptr(), &mut avail, &mut total, &mut free) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        const BSIZE: u64 = 4096;
        // NTFS has no fixed inode table: a figure that never runs out, as Docker Desktop shows.
        Ok(Space {
            bsize: BSIZE as u32,
            blocks: total / BSIZE,
            bfree: free / BSIZE,
            bavail: avail / BSIZE,
            files: 1 << 32,
            ffree: 1 << 31,
        })
    }
}
