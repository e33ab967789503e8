//! Layer tars from overlay upper directories: what a container (or a build step) changed
//! becomes a layer. Overlay whiteouts (char device 0/0) become OCI `.wh.<name>` entries and
//! opaque directories (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry, so the tar can
//! be pushed and saved as any other layer; [`super::unpack`] turns them back.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::layer::ChannelReader;
use super::save::ChannelWriter;
use crate::Result;

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Files the runtime bind-mounts over (created empty in the upper directory when the image
/// lacks them): never part of a layer, as with dockerd's init layer.
const MOUNT_POINTS: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv"];

fn whiteout_header(path: &Path) -> io::Result<Header> {
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_size(0);
    h.set_mode(0);
    h.set_mtime(0);
    h.set_path(path)?;
    h.set_cksum();
    Ok(h)
}

fn meta_header(m: &fs::Metadata, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(u64::from(m.uid()));
    h.set_gid(u64::from(m.gid()));
    h.set_mtime(u64::try_from(m.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

/// Writes entries of one directory (sorted, so equal trees give equal tars).
struct Differ<W: Write> {
    root: PathBuf,
    out: tar::Builder<W>,
    /// (dev, ino) of regular files with several links → first path written.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Differ<W> {
    fn dir(&mut self, rel: &Path) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(self.root.join(rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            self.entry(&rel.join(name))?;
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path) -> Result<()> {
        let full = self.root.join(rel);
        let m = fs::symlink_metadata(&full)?;
        let ft = m.file_type();
        if ft.is_file() && MOUNT_POINTS.iter().any(|p| rel == Path::new(p)) {
            return Ok(());
        }
        if ft.is_char_device() && m.rdev() == 0 {
            let name = rel.file_name().unwrap_or_default().to_string_lossy();
            let wh = rel.with_file_name(format!(".wh.{name}"));
            let h = whiteout_header(&wh)?;
            self.out.append(&h, io::empty())?;
        } else if ft.is_dir() {
            let mut h = meta_header(&m, EntryType::Directory);
            self.out.append_data(&mut h, rel, io::empty())?;
            let opaque = xattr::get(&full, OPAQUE_XATTR).ok().flatten();
            if opaque.as_deref() == Some(b"y") {
                let h = whiteout_header(&rel.join(".wh..wh..opq"))?;
                self.out.append(&h, io::empty())?;
            }
            self.dir(rel)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&full)?;
            let mut h = meta_header(&m, EntryType::Symlink);
            self.out.append_link(&mut h, rel, target)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                    let mut h = meta_header(&m, EntryType::Link);
                    self.out.append_link(&mut h, rel, first.clone())?;
                    return Ok(());
                }
                self.links.insert((m.dev(), m.ino()), rel.to_path_buf());
            }
            let mut h = meta_header(&m, EntryType::Regular);
            h.set_size(m.len());
            let f = fs::File::open(&full)?;
            // A file that shrinks while being read would corrupt the tar: read exactly len.
            self.out.append_data(&mut h, rel, f.take(m.len()))?;
        } else if ft.is_fifo() {
            let mut h = meta_header(&m, EntryType::Fifo);
            self.out.append_data(&mut h, rel, io::empty())?;
        } else {
            tracing::debug!(path = %rel.display(), "device or socket left out of the layer");
        }
        Ok(())
    }
}

/// Writes the layer tar of an overlay upper directory to `out`.
/// A container that never started has no upper directory yet: its layer is empty.
pub fn write_layer_tar(upper: &Path, out: impl Write) -> Result<()> {
    let mut d = Differ {
        root: upper.to_path_buf(),
        out: tar::Builder::new(out),
        links: HashMap::new(),
    };
    if upper.exists() {
        d.dir(Path::new(""))?;
    }
    d.out.into_inner()?.flush()?;
    Ok(())
}

/// A reader of the layer tar of `upper`, written on its own thread. A failure while writing
/// is a read error (never a short but well-formed tar), so no partial layer is committed.
pub fn layer_tar_reader(upper: PathBuf) -> ChannelReader {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut w = ChannelWriter::new(tx.clone());
        if let Err(e) = write_layer_tar(&upper, &mut w) {
            let _ = tx.blocking_send(Err(io::Error::other(e.message().to_string())));
        }
    });
    ChannelReader::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_and_opaque_dirs_become_oci_entries() {
        let dir = tempfile::tempdir().unwrap();
        let up = dir.path();
        fs::create_dir_all(up.join("etc/app")).unwrap();
        fs::write(up.join("etc/app/conf"), b"x=1").unwrap();
        std::os::unix::fs::symlink("conf", up.join("etc/app/link")).unwrap();
        fs::hard_link(up.join("etc/app/conf"), up.join("etc/app/hard")).unwrap();
        nix::sys::stat::mknod(
            &up.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let opaque_ok = xattr::set(up.join("etc/app"), OPAQUE_XATTR, b"y").is_ok();
        let mut buf = Vec::new();
        write_layer_tar(up, &mut buf).unwrap();
        let mut names = vec![];
        let mut a = tar::Archive::new(&buf[..]);
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            names.push((
                e.path().unwrap().display().to_string(),
                e.header().entry_type(),
            ));
        }
        let has = |n: &str, t: EntryType| names.iter().any(|(p, k)| p == n && *k == t);
        assert!(has("etc/", EntryType::Directory) || has("etc", EntryType::Directory));
        assert!(has("etc/app/conf", EntryType::Regular));
        assert!(has("etc/app/hard", EntryType::Link));
        assert!(has("etc/app/link", EntryType::Symlink));
        assert!(has("etc/.wh.gone", EntryType::Regular));
        if opaque_ok {
            assert!(has("etc/app/.wh..wh..opq", EntryType::Regular));
        }
        // And back: unpack gives overlay whiteouts again.
        let out = tempfile::tempdir().unwrap();
        super::super::unpack::unpack(&buf[..], out.path()).unwrap();
        let m = fs::symlink_metadata(out.path().join("etc/gone")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(fs::read(out.path().join("etc/app/hard")).unwrap(), b"x=1");
    }

    #[test]
    fn a_missing_upper_dir_is_an_empty_layer() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = Vec::new();
        write_layer_tar(&dir.path().join("never-started"), &mut buf).unwrap();
        let mut a = tar::Archive::new(&buf[..]);
        assert_eq!(a.entries().unwrap().count(), 0);
    }

    #[test]
    fn the_threaded_reader_yields_the_same_tar() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), vec![7u8; 300_000]).unwrap();
        let mut direct = Vec::new();
        write_layer_tar(dir.path(), &mut direct).unwrap();
        let mut piped = Vec::new();
        layer_tar_reader(dir.path().to_path_buf())
            .read_to_end(&mut piped)
            .unwrap();
        assert_eq!(direct, piped);
    }
}
