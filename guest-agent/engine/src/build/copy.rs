//! `COPY`/`ADD` (and `WORKDIR`'s directory) as a layer tar written straight from the source
//! tree: the context, or an image view for `COPY --from`. The tar goes to a file while a
//! checksum of the copied content (paths, modes, sizes, bytes; not mtimes) is computed, so
//! the step can be looked up in the cache before the layer is unpacked.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::view::ImageView;
use crate::compression::decoder;
use crate::{EngineError, Result};

/// What one `COPY`/`ADD` copies.
pub struct CopySpec<'a> {
    /// The tree sources are relative to (context dir or image view root).
    pub src_root: &'a Path,
    /// Source paths or globs, as expanded.
    pub sources: Vec<String>,
    /// Absolute destination (relative ones already joined to `WORKDIR`).
    pub dest: String,
    pub owner: (u32, u32),
    /// `--chmod` in octal.
    pub chmod: Option<u32>,
    /// `ADD`: local archives are extracted.
    pub add: bool,
    /// `--link`: the layer holds only what is copied (no parent or destination directories),
    /// made against an empty view rather than the image, so it is the same on any base.
    pub link: bool,
    /// The instruction name for messages.
    pub cmd: &'a str,
}

/// `path.Clean` relative to a root: no leading `/`, `..` cannot go above the root.
pub fn clean_rel(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Every path under `root` (relative, sorted), directories included.
fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(root.join(rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for n in names {
        let p = rel.join(n);
        let is_dir = fs::symlink_metadata(root.join(&p))?.is_dir();
        out.push(p.clone());
        if is_dir {
            walk(root, &p, out)?;
        }
    }
    Ok(())
}

/// Sources after glob expansion, relative to the root.
fn matches(spec: &CopySpec<'_>) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for s in &spec.sources {
        let rel = clean_rel(s);
        if has_glob(s) {
            let mut all = Vec::new();
            walk(spec.src_root, Path::new(""), &mut all)?;
            let pat = rel.to_string_lossy();
            out.extend(
                all.into_iter()
                    .filter(|p| crate::image::glob_match(&pat, &p.to_string_lossy())),
            );
        } else if fs::symlink_metadata(spec.src_root.join(&rel)).is_ok() {
            out.push(rel);
        } else {
            return Err(EngineError::invalid(format!(
                "{} failed: file not found in build context or excluded by .dockerignore: stat {s}: file does not exist",
                spec.cmd
            )));
        }
    }
    if out.is_empty() {
        return Err(EngineError::invalid(format!(
            "{} failed: no source files were specified",
            spec.cmd
        )));
    }
    Ok(out)
}

/// Hashes what it reads.
struct Hashing<'h, R> {
    inner: R,
    h: &'h mut Sha256,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.h.update(&buf[..n]);
        Ok(n)
    }
}

/// Writes the layer tar and the content checksum.
pub struct LayerWriter<'v, W: Write> {
    out: tar::Builder<W>,
    hash: Sha256,
    /// Directories already in the tar (relative).
    dirs: BTreeSet<PathBuf>,
    view: &'v ImageView,
    owner: (u32, u32),
    /// `COPY --link`: no entries for directories that are not copied ([`CopySpec::link`]).
    only_copied: bool,
}

impl<'v, W: Write> LayerWriter<'v, W> {
    pub fn new(out: W, view: &'v ImageView, owner: (u32, u32)) -> Self {
        Self {
            out: tar::Builder::new(out),
            hash: Sha256::new(),
            dirs: BTreeSet::new(),
            view,
            owner,
            only_copied: false,
        }
    }

    /// Writes only the copied entries: parents and destination directories are left to
    /// whatever the layer is unpacked on (`COPY --link`).
    pub fn only_copied(mut self) -> Self {
        self.only_copied = true;
        self
    }

    fn header(&self, kind: EntryType, mode: u32, mtime: i64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode & 0o7777);
        h.set_uid(u64::from(self.owner.0));
        h.set_gid(u64::from(self.owner.1));
        h.set_mtime(u64::try_from(mtime).unwrap_or(0));
        h.set_size(0);
        h
    }

    fn note(&mut self, rel: &Path, kind: &str, mode: u32, extra: &str) {
        self.hash.update(
            format!("{}\0{kind}\0{:o}\0{extra}\0", rel.display(), mode & 0o7777).as_bytes(),
        );
    }

    /// Adds the parents of `rel` the tar does not hold yet. One the image has as a directory is
    /// written with the image's mode, owner and mtime, as the copy-up into a container's layer
    /// puts it in dockerd's layer: without it, unpacking the layer would make the parent anew
    /// (0755) and hide the image's (`/tmp` would lose its 1777). A missing one is made 0755; one
    /// that is something else in the image (a symlink) is left to the image.
    fn parents(&mut self, rel: &Path) -> Result<()> {
        if self.only_copied {
            return Ok(());
        }
        let mut acc = PathBuf::new();
        let comps: Vec<_> = rel.components().collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            acc.push(c);
            if self.dirs.contains(&acc) {
                continue;
            }
            let path = acc.to_string_lossy().into_owned();
            if let Some(m) = self.view.dir_metadata(&path) {
                self.image_dir(&acc.clone(), &m)?;
            } else if !self.view.exists(&path) {
                self.dir_entry(&acc.clone(), 0o755, now())?;
            }
        }
        Ok(())
    }

    /// The image's directory `rel` as it is there (`m`), after its parents. The root (an empty
    /// `rel`, as `COPY dir/ /` gives) is never an entry of a layer.
    fn image_dir(&mut self, rel: &Path, m: &fs::Metadata) -> Result<()> {
        if rel.as_os_str().is_empty() || self.dirs.contains(rel) {
            return Ok(());
        }
        self.parents(rel)?;
        let mode = m.permissions().mode();
        let mut h = self.header(EntryType::Directory, mode, m.mtime());
        h.set_uid(u64::from(m.uid()));
        h.set_gid(u64::from(m.gid()));
        self.out.append_data(&mut h, rel, io::empty())?;
        self.note(rel, "d", mode, &format!("{}:{}", m.uid(), m.gid()));
        self.dirs.insert(rel.to_path_buf());
        Ok(())
    }

    /// A directory entry (after its parents).
    pub fn dir_entry(&mut self, rel: &Path, mode: u32, mtime: i64) -> Result<()> {
        if rel.as_os_str().is_empty() || self.dirs.contains(rel) {
            return Ok(());
        }
        self.parents(rel)?;
        let mut h = self.header(EntryType::Directory, mode, mtime);
        self.out.append_data(&mut h, rel, io::empty())?;
        self.note(rel, "d", mode, "");
        self.dirs.insert(rel.to_path_buf());
        Ok(())
    }

    /// Makes `rel` (a directory path in the image) exist, unless the image has it.
    pub fn ensure_dir(&mut self, rel: &Path) -> Result<()> {
        if self.only_copied
            || rel.as_os_str().is_empty()
            || self.view.is_dir(&rel.to_string_lossy())
        {
            return Ok(());
        }
        self.dir_entry(rel, 0o755, now())
    }

    /// Copies `src` (file, symlink or directory tree) to `rel`.
    fn copy(&mut self, src: &Path, rel: &Path, chmod: Option<u32>) -> Result<()> {
        let m = fs::symlink_metadata(src)?;
        let mode = chmod.unwrap_or(m.permissions().mode());
        let ft = m.file_type();
        if ft.is_dir() {
            let path = rel.to_string_lossy().into_owned();
            if let Some(existing) = self.view.dir_metadata(&path) {
                self.image_dir(rel, &existing)?;
            } else if self.view.is_dir(&path) {
                self.parents(rel)?;
            } else {
                self.dir_entry(rel, mode, m.mtime())?;
            }
            let mut names: Vec<_> = fs::read_dir(src)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()?;
            names.sort();
            for n in names {
                self.copy(&src.join(&n), &rel.join(&n), chmod)?;
            }
        } else if ft.is_symlink() {
            self.parents(rel)?;
            let target = fs::read_link(src)?;
            let mut h = self.header(EntryType::Symlink, 0o777, m.mtime());
            self.out.append_link(&mut h, rel, &target)?;
            self.note(rel, "l", 0o777, &target.to_string_lossy());
        } else if ft.is_file() {
            self.parents(rel)?;
            let mut h = self.header(EntryType::Regular, mode, m.mtime());
            h.set_size(m.len());
            self.note(rel, "f", mode, &m.len().to_string());
            let f = fs::File::open(src)?;
            let r = Hashing {
                inner: f.take(m.len()),
                h: &mut self.hash,
            };
            self.out.append_data(&mut h, rel, r)?;
        } else {
            tracing::debug!(path = %src.display(), "special file not copied");
        }
        Ok(())
    }

    /// `ADD` of a local archive: its entries under the directory `rel`.
    fn extract(&mut self, archive: &Path, rel: &Path) -> Result<()> {
        self.ensure_dir(rel)?;
        let r = BufReader::new(fs::File::open(archive)?);
        let mut archive = tar::Archive::new(decoder(r)?);
        for e in archive.entries()? {
            let mut e = e?;
            let path = clean_rel(&e.path()?.to_string_lossy());
            if path.as_os_str().is_empty() {
                continue;
            }
            let target = rel.join(&path);
            let mut h = e.header().clone();
            // The archive's owners are kept; unreadable ones become the step's owner.
            if h.uid().is_err() || h.gid().is_err() {
                h.set_uid(u64::from(self.owner.0));
                h.set_gid(u64::from(self.owner.1));
            }
            self.note(
                &target,
                "a",
                h.mode().unwrap_or(0),
                &h.size().unwrap_or(0).to_string(),
            );
            if h.entry_type() == EntryType::Directory {
                self.dirs.insert(target.clone());
            }
            self.parents(&target)?;
            match h.entry_type() {
                EntryType::Link | EntryType::Symlink => {
                    let link = e.link_name()?.unwrap_or_default().into_owned();
                    let link = if h.entry_type() == EntryType::Link {
                        rel.join(clean_rel(&link.to_string_lossy()))
                    } else {
                        link
                    };
                    self.out.append_link(&mut h, &target, link)?;
                }
                _ => {
                    let r = Hashing {
                        inner: &mut e,
                        h: &mut self.hash,
                    };
                    self.out.append_data(&mut h, &target, r)?;
                }
            }
        }
        Ok(())
    }

    /// Finishes the tar; returns the content checksum.
    pub fn finish(self) -> Result<String> {
        self.out.into_inner()?.flush()?;
        Ok(hex::encode(self.hash.finalize()))
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Whether `ADD` extracts the file: a tar, plain or compressed (gzip, bzip2, xz, zstd).
fn is_archive(path: &Path) -> bool {
    let Ok(f) = fs::File::open(path) else {
        return false;
    };
    let Ok(mut r) = decoder(BufReader::new(f)) else {
        return false;
    };
    let mut block = [0u8; 512];
    r.read_exact(&mut block).is_ok() && &block[257..262] == b"ustar"
}

/// Writes the layer of one `COPY`/`ADD` into `out`; returns the content checksum.
pub fn copy_layer(spec: &CopySpec<'_>, view: &ImageView, out: impl Write) -> Result<String> {
    let found = matches(spec)?;
    let multi = found.len() > 1 || spec.sources.len() > 1;
    if multi && !spec.dest.ends_with('/') {
        return Err(EngineError::invalid(format!(
            "When using {} with more than one source file, the destination must be a directory and end with a /",
            spec.cmd
        )));
    }
    let dest = clean_rel(&spec.dest);
    let dest_is_dir = spec.dest.ends_with('/') || multi || view.is_dir(&spec.dest);
    let mut w = LayerWriter::new(out, view, spec.owner);
    if spec.link {
        w = w.only_copied();
    }
    w.hash
        .update(format!("{}\0{:?}\0", spec.dest, spec.chmod).as_bytes());
    for rel in found {
        let src = spec.src_root.join(&rel);
        let m = fs::symlink_metadata(&src)?;
        if m.is_dir() {
            // A directory's contents go into the destination.
            w.copy(&src, &dest, spec.chmod)?;
        } else if spec.add && m.is_file() && is_archive(&src) {
            w.extract(&src, &dest)?;
        } else {
            let name = rel.file_name().map(PathBuf::from).unwrap_or_default();
            let target = if dest_is_dir {
                dest.join(name)
            } else {
                dest.clone()
            };
            if dest_is_dir {
                w.ensure_dir(&dest)?;
            }
            w.copy(&src, &target, spec.chmod)?;
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar: &[u8]) -> Vec<(String, u64, u64)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path()
                        .unwrap()
                        .display()
                        .to_string()
                        .trim_end_matches('/')
                        .to_string(),
                    e.header().uid().unwrap(),
                    e.header().size().unwrap(),
                )
            })
            .collect()
    }

    /// A `COPY` (or with `add`, an `ADD`) of `sources` under `root` to `dest`.
    fn copy_spec<'a>(root: &'a Path, sources: &[&str], dest: &str, add: bool) -> CopySpec<'a> {
        CopySpec {
            src_root: root,
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: dest.into(),
            owner: (0, 0),
            chmod: None,
            add,
            link: false,
            cmd: if add { "ADD" } else { "COPY" },
        }
    }

    #[test]
    fn a_folder_copied_to_the_root_has_no_entry_for_the_root() {
        let ctx = tempfile::tempdir().unwrap();
        fs::create_dir_all(ctx.path().join("rootfs/www")).unwrap();
        fs::write(ctx.path().join("rootfs/www/index.html"), b"hi").unwrap();
        let img = tempfile::tempdir().unwrap();
        fs::create_dir_all(img.path().join("www")).unwrap();
        let view = ImageView::open(&[img.path().to_path_buf()], PathBuf::new()).unwrap();
        let mut buf = Vec::new();
        copy_layer(
            &copy_spec(ctx.path(), &["rootfs/"], "/", false),
            &view,
            &mut buf,
        )
        .unwrap();
        let n = names(&buf);
        assert_eq!(
            n.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            ["www", "www/index.html"]
        );
    }

    #[test]
    fn files_dirs_and_globs_land_under_the_destination() {
        let ctx = tempfile::tempdir().unwrap();
        let c = ctx.path();
        fs::create_dir_all(c.join("dir/sub")).unwrap();
        fs::write(c.join("dir/sub/x"), b"xx").unwrap();
        fs::write(c.join("a.txt"), b"a").unwrap();
        fs::write(c.join("b.txt"), b"bb").unwrap();
        fs::write(c.join("c.md"), b"c").unwrap();
        let img = tempfile::tempdir().unwrap();
        fs::create_dir_all(img.path().join("etc")).unwrap();
        let view = ImageView::open(&[img.path().to_path_buf()], PathBuf::new()).unwrap();
        let spec = |sources: &[&str], dest: &str| CopySpec {
            owner: (5, 6),
            ..copy_spec(c, sources, dest, false)
        };
        let mut buf = Vec::new();
        let sum1 = copy_layer(&spec(&["*.txt"], "/etc/app/"), &view, &mut buf).unwrap();
        let n = names(&buf);
        assert_eq!(
            n.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            ["etc", "etc/app", "etc/app/a.txt", "etc/app/b.txt"]
        );
        // The image's `etc` keeps its owner; what the step wrote is the step's.
        assert_eq!(
            n[0].1,
            u64::from(fs::metadata(img.path().join("etc")).unwrap().uid())
        );
        assert!(n[1..].iter().all(|x| x.1 == 5));
        let mut again = Vec::new();
        let sum2 = copy_layer(&spec(&["*.txt"], "/etc/app/"), &view, &mut again).unwrap();
        assert_eq!(sum1, sum2);

        let mut buf = Vec::new();
        copy_layer(&spec(&["dir"], "/opt/d"), &view, &mut buf).unwrap();
        let n: Vec<String> = names(&buf).into_iter().map(|x| x.0).collect();
        assert_eq!(n, ["opt", "opt/d", "opt/d/sub", "opt/d/sub/x"]);

        let mut buf = Vec::new();
        copy_layer(&spec(&["a.txt"], "/etc/renamed"), &view, &mut buf).unwrap();
        assert_eq!(names(&buf)[1].0, "etc/renamed");

        let err = copy_layer(&spec(&["a.txt", "b.txt"], "/x"), &view, Vec::new()).unwrap_err();
        assert!(err.message().contains("must be a directory"));
        let err = copy_layer(&spec(&["nope"], "/x"), &view, Vec::new()).unwrap_err();
        assert!(err.message().contains("file not found in build context"));
    }

    /// What dockerd's layer holds too: the parents the image has, as they are there. Without
    /// them the unpacked layer made `/tmp` anew with 0755 over the image's 1777 (a Dev
    /// Containers feature build then left `/tmp` unwritable for the remote user).
    #[test]
    fn parents_the_image_has_keep_their_mode() {
        let ctx = tempfile::tempdir().unwrap();
        fs::create_dir_all(ctx.path().join("sub")).unwrap();
        fs::write(ctx.path().join("sub/f"), b"f").unwrap();
        let img = tempfile::tempdir().unwrap();
        let tmp = img.path().join("tmp");
        fs::create_dir_all(&tmp).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).unwrap();
        let view = ImageView::open(&[img.path().to_path_buf()], PathBuf::new()).unwrap();
        for dest in ["/tmp/y", "/tmp/"] {
            let spec = copy_spec(ctx.path(), &["sub/"], dest, false);
            let mut buf = Vec::new();
            copy_layer(&spec, &view, &mut buf).unwrap();
            let mut a = tar::Archive::new(&buf[..]);
            let first = a.entries().unwrap().next().unwrap().unwrap();
            let path = first.path().unwrap().display().to_string();
            assert_eq!(path.trim_end_matches('/'), "tmp", "{dest}");
            assert_eq!(first.header().mode().unwrap(), 0o1777, "{dest}");
        }
    }

    /// `COPY --link`: only what is copied, nothing of the image (its `/tmp`, its `etc`),
    /// no destination directory; a copied folder is an entry, with its own mode.
    #[test]
    fn a_linked_copy_holds_only_the_copied_entries() {
        let ctx = tempfile::tempdir().unwrap();
        fs::create_dir_all(ctx.path().join("sub")).unwrap();
        fs::set_permissions(ctx.path().join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(ctx.path().join("sub/f"), b"f").unwrap();
        fs::write(ctx.path().join("a.txt"), b"a").unwrap();
        for f in ["sub/f", "a.txt"] {
            fs::set_permissions(ctx.path().join(f), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let empty = tempfile::tempdir().unwrap();
        let view = ImageView::open(&[empty.path().to_path_buf()], PathBuf::new()).unwrap();
        let linked = |sources: &[&str], dest: &str| {
            let spec = CopySpec {
                link: true,
                ..copy_spec(ctx.path(), sources, dest, false)
            };
            let mut buf = Vec::new();
            copy_layer(&spec, &view, &mut buf).unwrap();
            let mut a = tar::Archive::new(&buf[..]);
            a.entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let p = e.path().unwrap().display().to_string();
                    (
                        p.trim_end_matches('/').to_string(),
                        e.header().mode().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            linked(&["a.txt"], "/tmp/app/"),
            [("tmp/app/a.txt".into(), 0o644)]
        );
        assert_eq!(
            linked(&["sub"], "/etc/sub"),
            [("etc/sub".into(), 0o750), ("etc/sub/f".into(), 0o644)]
        );
    }

    #[test]
    fn add_extracts_local_archives() {
        let ctx = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "in/side.txt", &b"abc"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        fs::write(ctx.path().join("a.tar.gz"), gz.finish().unwrap()).unwrap();
        let img = tempfile::tempdir().unwrap();
        let view = ImageView::open(&[img.path().to_path_buf()], PathBuf::new()).unwrap();
        let spec = copy_spec(ctx.path(), &["a.tar.gz"], "/srv/", true);
        let mut buf = Vec::new();
        copy_layer(&spec, &view, &mut buf).unwrap();
        let n: Vec<String> = names(&buf).into_iter().map(|x| x.0).collect();
        assert_eq!(n, ["srv", "srv/in", "srv/in/side.txt"]);
    }
}
