//! Writing a tar of a file or directory tree (for `docker cp` out and `docker export`), and
//! the Go `os.FileMode` of a file that `docker cp` reads in its stat header.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header, HeaderMode};

// Go's os.FileMode type bits.
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_DEVICE: u32 = 1 << 26;
const MODE_NAMED_PIPE: u32 = 1 << 25;
const MODE_SOCKET: u32 = 1 << 24;
const MODE_SETUID: u32 = 1 << 23;
const MODE_SETGID: u32 = 1 << 22;
const MODE_CHAR_DEVICE: u32 = 1 << 21;
const MODE_STICKY: u32 = 1 << 20;

/// The Go `os.FileMode` of `m`, as dockerd puts it in `X-Docker-Container-Path-Stat`.
pub fn go_file_mode(m: &Metadata) -> u32 {
    let ft = m.file_type();
    let mode = m.mode();
    let mut out = mode & 0o777;
    if ft.is_dir() {
        out |= MODE_DIR;
    } else if ft.is_symlink() {
        out |= MODE_SYMLINK;
    } else if ft.is_block_device() {
        out |= MODE_DEVICE;
    } else if ft.is_char_device() {
        out |= MODE_DEVICE | MODE_CHAR_DEVICE;
    } else if ft.is_fifo() {
        out |= MODE_NAMED_PIPE;
    } else if ft.is_socket() {
        out |= MODE_SOCKET;
    }
    if mode & 0o4000 != 0 {
        out |= MODE_SETUID;
    }
    if mode & 0o2000 != 0 {
        out |= MODE_SETGID;
    }
    if mode & 0o1000 != 0 {
        out |= MODE_STICKY;
    }
    out
}

/// A tar writer that keeps hard links as links (first path seen per inode).
pub struct TreeWriter<W: Write> {
    tar: tar::Builder<W>,
    inodes: HashMap<(u64, u64), String>,
}

impl<W: Write> TreeWriter<W> {
    pub fn new(out: W) -> Self {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        Self {
            tar,
            inodes: HashMap::new(),
        }
    }

    /// Adds `path` as `name` and, for a directory, everything below it (symlinks are never
    /// followed; the top itself is followed when `follow_top`). Entries that vanish while
    /// being read are skipped. `name` may be `.`, which prefixes every entry with `./`, or
    /// empty, which leaves the top out and names the rest relative to it.
    pub fn add_tree(&mut self, path: &Path, name: &str, follow_top: bool) -> io::Result<()> {
        let meta = if follow_top {
            fs::metadata(path)?
        } else {
            fs::symlink_metadata(path)?
        };
        self.add_entry(path, name, &meta)
    }

    fn add_entry(&mut self, path: &Path, name: &str, meta: &Metadata) -> io::Result<()> {
        let ft = meta.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        let mut h = Header::new_gnu();
        h.set_metadata_in_mode(meta, HeaderMode::Complete);
        if ft.is_dir() {
            if name != "." && !name.is_empty() {
                self.append(&mut h, &format!("{name}/"), io::empty())?;
            }
            let mut children: Vec<_> = match fs::read_dir(path) {
                Ok(rd) => rd.flatten().map(|e| e.file_name()).collect(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            children.sort();
            for child in children {
                let child_path = path.join(&child);
                let child_name = if name.is_empty() {
                    child.to_string_lossy().into_owned()
                } else {
                    format!("{name}/{}", child.to_string_lossy())
                };
                match fs::symlink_metadata(&child_path) {
                    Ok(m) => self.add_entry(&child_path, &child_name, &m)?,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(());
        }
        if ft.is_symlink() {
            let target = fs::read_link(path)?;
            h.set_size(0);
            h.set_entry_type(EntryType::Symlink);
            h.set_link_name_literal(target.as_os_str().as_encoded_bytes())?;
            return self.append(&mut h, name, io::empty());
        }
        if ft.is_file() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.inodes.get(&key) {
                h.set_size(0);
                h.set_entry_type(EntryType::Link);
                h.set_link_name_literal(first.as_bytes())?;
                return self.append(&mut h, name, io::empty());
            }
            self.inodes.insert(key, name.to_string());
        }
        if ft.is_file() {
            let f = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            // The size in the header must match what follows, even if the file changes.
            let len = meta.len();
            h.set_size(len);
            return self
                .append(&mut h, name, io::Read::chain(io::Read::take(f, len), Zeros))
                .and(Ok(()));
        }
        // Fifos and device nodes: metadata only.
        h.set_size(0);
        if ft.is_char_device() || ft.is_block_device() {
            let rdev = meta.rdev();
            h.set_device_major(nix::sys::stat::major(rdev) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(rdev) as u32)?;
        }
        self.append(&mut h, name, io::empty())
    }

    /// Appends one entry; names starting with `./` go into a PAX `path` record, which the tar
    /// crate would otherwise strip to the bare name.
    fn append(&mut self, h: &mut Header, name: &str, data: impl io::Read) -> io::Result<()> {
        if name.starts_with("./") {
            self.tar
                .append_pax_extensions([("path", name.as_bytes())])?;
        }
        let data = io::Read::take(data, h.size()?);
        self.tar.append_data(h, name, data)
    }

    pub fn finish(self) -> io::Result<W> {
        self.tar.into_inner()
    }
}

/// An endless source of zero bytes (pads a file that shrank while being read).
struct Zeros;

impl io::Read for Zeros {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(data: &[u8]) -> Vec<(String, EntryType)> {
        let mut a = tar::Archive::new(data);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn tree_keeps_links_and_prefixes() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("dir");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("a"), b"hello").unwrap();
        fs::hard_link(root.join("a"), root.join("b")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("l")).unwrap();
        let mut w = TreeWriter::new(Vec::new());
        w.add_tree(&root, "dir", false).unwrap();
        let data = w.finish().unwrap();
        assert_eq!(
            names(&data),
            vec![
                ("dir/".to_string(), EntryType::Directory),
                ("dir/a".to_string(), EntryType::Regular),
                ("dir/b".to_string(), EntryType::Link),
                ("dir/l".to_string(), EntryType::Symlink),
            ]
        );
        let mut w = TreeWriter::new(Vec::new());
        w.add_tree(&root, ".", false).unwrap();
        let data = w.finish().unwrap();
        assert_eq!(names(&data)[0].0, "./a");
    }

    #[test]
    fn go_modes() {
        let d = tempfile::tempdir().unwrap();
        let m = fs::metadata(d.path()).unwrap();
        assert_eq!(go_file_mode(&m) & MODE_DIR, MODE_DIR);
        std::os::unix::fs::symlink("x", d.path().join("l")).unwrap();
        let m = fs::symlink_metadata(d.path().join("l")).unwrap();
        assert_eq!(go_file_mode(&m), MODE_SYMLINK | 0o777);
    }
}
