//! A container's files through the archive API (`GET`/`PUT /containers/{id}/archive`, what
//! `docker cp` uses): list a folder, read a text file, save a file or folder to the Downloads
//! folder, upload files into a folder. The engine sends a folder as a tar of everything under
//! it; the listing reads only the headers of its direct children (the rest is skipped as it
//! streams by, never held in memory).

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptionsBuilder};
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use tauri::{AppHandle, Manager, State};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::engine::Engine;
use crate::error::{AppError, Result};
use crate::state::AppState;

/// At most this many entries of a folder are listed.
pub const MAX_ENTRIES: usize = 5000;
/// How long an upload (a restore, a clone, dropped files) may take.
const MAX_UPLOAD: std::time::Duration = std::time::Duration::from_secs(3600);
/// At most this much of a file is shown in the viewer.
const MAX_VIEW: u64 = 1024 * 1024;

/// One entry of a folder, from its tar header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    pub name: String,
    /// `dir`, `file`, `link` (symbolic) or `other` (devices, fifos…).
    pub kind: &'static str,
    pub size: u64,
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// Where a symbolic link points.
    pub link: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub path: String,
    pub entries: Vec<FileEntry>,
    /// More entries than [`MAX_ENTRIES`]: the rest is not listed.
    pub truncated: bool,
}

/// A file's start, for the viewer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub size: u64,
    /// The text (up to [`MAX_VIEW`] bytes), or `None` when the file is not UTF-8 text.
    pub text: Option<String>,
    pub truncated: bool,
}

/// The normal components of a tar entry's path (`./`, `/` and `..` dropped).
fn parts(p: &Path) -> Vec<String> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

fn kind(t: tar::EntryType) -> &'static str {
    if t.is_dir() {
        "dir"
    } else if t.is_symlink() {
        "link"
    } else if t.is_file() || t.is_hard_link() || t == tar::EntryType::Continuous {
        "file"
    } else {
        "other"
    }
}

/// Whether the engine names the top of a `GET …/archive` tar (`etc/…`) or leaves it out
/// (`./bin/…` for the root and for `dir/.`, as dockerd does).
pub fn top_named(path: &str) -> bool {
    !(parts(Path::new(path)).is_empty() || path.ends_with("/.") || path == ".")
}

/// The direct children of the folder a `GET …/archive` tar holds: with `top_named` the
/// entries one level below the top (`etc/passwd`), else those at the top (`./bin`).
pub fn list_children(
    r: impl Read,
    top_named: bool,
    max: usize,
) -> std::io::Result<(Vec<FileEntry>, bool)> {
    let mut ar = tar::Archive::new(r);
    let depth = usize::from(top_named) + 1;
    let mut out = Vec::new();
    for entry in ar.entries()? {
        let e = entry?;
        let p = parts(&e.path()?);
        if p.len() != depth {
            continue;
        }
        if out.len() == max {
            return Ok((out, true));
        }
        let h = e.header();
        out.push(FileEntry {
            name: p[depth - 1].clone(),
            kind: kind(h.entry_type()),
            size: h.size().unwrap_or(0),
            mode: h.mode().unwrap_or(0) & 0o7777,
            mtime: h.mtime().unwrap_or(0),
            link: e
                .link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .filter(|_| h.entry_type().is_symlink()),
        });
    }
    out.sort_by(|a, b| (a.kind != "dir", &a.name).cmp(&(b.kind != "dir", &b.name)));
    Ok((out, false))
}

/// The first `max` bytes of the single file a `GET …/archive` tar holds.
pub fn read_file(r: impl Read, max: u64) -> Result<FileView> {
    let io = |e: std::io::Error| AppError::Client(format!("reading the archive: {e}"));
    let mut ar = tar::Archive::new(r);
    let mut entries = ar.entries().map_err(io)?;
    let e = entries
        .next()
        .ok_or_else(|| AppError::Client("the archive is empty".into()))?
        .map_err(io)?;
    let t = e.header().entry_type();
    if !(t.is_file() || t == tar::EntryType::Continuous) {
        return Err(AppError::Invalid(format!(
            "not a regular file ({})",
            kind(t)
        )));
    }
    let size = e.header().size().unwrap_or(0);
    let mut buf = Vec::new();
    e.take(max).read_to_end(&mut buf).map_err(io)?;
    Ok(FileView {
        size,
        text: as_text(&buf),
        truncated: size > buf.len() as u64,
    })
}

/// `buf` as text when it is UTF-8 without NUL bytes (a character cut at the end is dropped).
fn as_text(buf: &[u8]) -> Option<String> {
    if buf.contains(&0) {
        return None;
    }
    match std::str::from_utf8(buf) {
        Ok(s) => Some(s.to_string()),
        Err(e) if e.error_len().is_none() => Some(
            std::str::from_utf8(&buf[..e.valid_up_to()])
                .ok()?
                .to_string(),
        ),
        Err(_) => None,
    }
}

/// The archive of `path` as a byte stream; an engine error (no such path) is returned here,
/// before any byte is read.
pub async fn archive(
    e: &Engine,
    id: &str,
    path: &str,
) -> Result<impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + Unpin + 'static> {
    let opts = DownloadFromContainerOptions { path: path.into() };
    let mut s = e.docker()?.download_from_container(id, Some(opts));
    let first = match s.next().await {
        Some(r) => Some(r.map_err(|x| e.err(x))?),
        None => None,
    };
    let rest = s.map_err(|x| std::io::Error::other(x.to_string()));
    Ok(futures::stream::iter(first.map(Ok)).chain(rest))
}

/// Runs `f` over the archive of `path` as a blocking reader.
pub async fn with_archive<T: Send + 'static>(
    e: &Engine,
    id: &str,
    path: &str,
    f: impl FnOnce(&mut dyn Read) -> Result<T> + Send + 'static,
) -> Result<T> {
    let s = archive(e, id, path).await?;
    let mut r = SyncIoBridge::new(StreamReader::new(s));
    tokio::task::spawn_blocking(move || f(&mut r))
        .await
        .map_err(|x| AppError::Client(x.to_string()))?
}

/// The direct children of folder `path` of container `id` (at most `max`) and whether there
/// were more.
pub async fn list_in(
    e: &Engine,
    id: &str,
    path: &str,
    max: usize,
) -> Result<(Vec<FileEntry>, bool)> {
    let named = top_named(path);
    with_archive(e, id, path, move |r| {
        list_children(r, named, max)
            .map_err(|x| AppError::Client(format!("reading the archive: {x}")))
    })
    .await
}

/// Lists the folder `path` of container `id`.
#[tauri::command]
pub async fn containers_files_list(
    state: State<'_, AppState>,
    id: String,
    path: String,
) -> Result<Listing> {
    let (entries, truncated) = list_in(&state.engine(), &id, &path, MAX_ENTRIES).await?;
    Ok(Listing {
        path,
        entries,
        truncated,
    })
}

/// The start of the file `path` of container `id`, as text when it is text.
pub async fn read_in(e: &Engine, id: &str, path: &str) -> Result<FileView> {
    with_archive(e, id, path, |r| read_file(r, MAX_VIEW)).await
}

/// The start of the file `path` of container `id`, as text when it is text.
#[tauri::command]
pub async fn containers_files_read(
    state: State<'_, AppState>,
    id: String,
    path: String,
) -> Result<FileView> {
    read_in(&state.engine(), &id, &path).await
}

/// The user's Downloads folder (created if missing).
pub fn downloads_dir(app: &AppHandle) -> Result<PathBuf> {
    let paths = app.path();
    let dir = paths
        .download_dir()
        .or_else(|_| paths.home_dir().map(|h| h.join("Downloads")))
        .map_err(|x| AppError::Client(format!("no Downloads folder: {x}")))?;
    std::fs::create_dir_all(&dir).map_err(|err| AppError::Io {
        path: dir.display().to_string(),
        err,
    })?;
    Ok(dir)
}

/// `dir/name`, or `dir/name (1).ext`, `(2)`… when taken (as browsers save downloads).
pub fn unique_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rfind('.').filter(|&i| i > 0) {
        Some(i) => name.split_at(i),
        None => (name, ""),
    };
    (1..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| !p.exists())
        .expect("a free name")
}

/// The last component of a container path (`/` when there is none).
pub fn base_name(path: &str) -> String {
    parts(Path::new(path))
        .pop()
        .unwrap_or_else(|| "root".into())
}

/// What a download writes: the file itself, or a folder's archive as the engine sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveAs {
    File,
    Tar,
}

/// Streams `path` of container `id` to a new file `name` in the Downloads folder (never
/// overwriting one: see [`unique_path`]); returns where. A failed copy removes what it wrote.
pub async fn save_from(
    app: &AppHandle,
    e: &Engine,
    id: &str,
    path: &str,
    how: SaveAs,
    name: &str,
) -> Result<PathBuf> {
    let target = unique_path(&downloads_dir(app)?, name);
    let to = target.clone();
    let saved = with_archive(e, id, path, move |r| {
        let io = |err| AppError::Io {
            path: to.display().to_string(),
            err,
        };
        let mut out = std::fs::File::create(&to).map_err(io)?;
        match how {
            SaveAs::Tar => {
                std::io::copy(r, &mut out).map_err(io)?;
            }
            SaveAs::File => {
                let mut ar = tar::Archive::new(r);
                let mut entries = ar.entries().map_err(io)?;
                let mut e = entries
                    .next()
                    .ok_or_else(|| AppError::Client("the archive is empty".into()))?
                    .map_err(io)?;
                std::io::copy(&mut e, &mut out).map_err(io)?;
            }
        }
        out.sync_all().map_err(io)
    })
    .await;
    if saved.is_err() {
        let _ = std::fs::remove_file(&target);
    }
    saved?;
    tracing::info!(container = %id, %path, to = %target.display(), "file saved");
    Ok(target)
}

/// Saves the file `path` of container `id` to the Downloads folder (a folder, `dir`, as
/// `<name>.tar`, the archive as the engine sent it); returns where.
#[tauri::command]
pub async fn containers_files_save(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    path: String,
    dir: bool,
) -> Result<String> {
    let name = base_name(&path);
    let (how, name) = if dir {
        (SaveAs::Tar, format!("{name}.tar"))
    } else {
        (SaveAs::File, name)
    };
    let to = save_from(&app, &state.engine(), &id, &path, how, &name).await?;
    Ok(to.display().to_string())
}

/// A tar holding one regular file `name` (mode 0644, owned by root, as `docker cp` makes it
/// without `-a`).
pub fn tar_of_file(name: &str, data: &[u8], mtime: u64) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    b.append_data(&mut h, name, data)?;
    b.into_inner()
}

/// `name` if it is one plain path component.
fn plain_name(name: &str) -> Result<&str> {
    let p = Path::new(name);
    match p.components().collect::<Vec<_>>().as_slice() {
        [Component::Normal(_)] if !name.contains('/') => Ok(name),
        _ => Err(AppError::Invalid(format!("invalid file name {name:?}"))),
    }
}

/// Decodes `%XX` escapes (the UI sends header values through `encodeURIComponent`).
fn percent_decode(s: &str) -> Result<String> {
    let bad = || AppError::Invalid(format!("bad escape in {s:?}"));
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// One file the UI uploads: the body is the file's bytes (sent raw); the headers `target`
/// (the container or volume, named by the caller), `x-berth-dir` and `x-berth-name` (each
/// URI-encoded) say where.
pub struct Upload<'a> {
    pub target: String,
    pub dir: String,
    pub name: String,
    pub data: &'a [u8],
}

impl<'a> Upload<'a> {
    pub fn from_request(request: &'a tauri::ipc::Request<'_>, target: &str) -> Result<Self> {
        let header = |k: &str| -> Result<String> {
            let v = request
                .headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| AppError::Invalid(format!("missing {k}")))?;
            percent_decode(v)
        };
        let tauri::ipc::InvokeBody::Raw(data) = request.body() else {
            return Err(AppError::Invalid(
                "the file must be sent as raw bytes".into(),
            ));
        };
        Ok(Self {
            target: header(target)?,
            dir: header("x-berth-dir")?,
            name: header("x-berth-name")?,
            data,
        })
    }
}

/// Extracts the tar `body` into folder `dir` of container `id` (`PUT …/archive`, streamed);
/// `keep_owners` keeps the archive's owners (`docker cp -a`), else root owns what it writes.
pub async fn put_tar(
    e: &Engine,
    id: &str,
    dir: &str,
    keep_owners: bool,
    body: impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
) -> Result<()> {
    let opts = UploadToContainerOptionsBuilder::default()
        .path(dir)
        .copy_uidgid(if keep_owners { "1" } else { "0" })
        .build();
    // The engine answers once the whole archive is in: bound it by [`MAX_UPLOAD`], not by
    // the client's per-request limit.
    let r = e
        .docker()?
        .with_timeout(MAX_UPLOAD)
        .upload_to_container(id, Some(opts), bollard::body_try_stream(body))
        .await;
    r.map_err(|x| e.err(x))
}

/// Writes one file `name` with `data` into folder `dir` of container `id`.
pub async fn put_file(e: &Engine, id: &str, dir: &str, name: &str, data: &[u8]) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let tar = tar_of_file(plain_name(name)?, data, now)
        .map_err(|x| AppError::Client(format!("making the archive: {x}")))?;
    let body = futures::stream::once(async move { Ok(bytes::Bytes::from(tar)) });
    put_tar(e, id, dir, false, body).await?;
    tracing::info!(container = %id, %dir, %name, bytes = data.len(), "file uploaded");
    Ok(())
}

/// Host files and folders dropped on a browser (Tauri's drag-drop gives their paths).
fn dropped_names(paths: &[PathBuf]) -> Result<Vec<(PathBuf, std::ffi::OsString)>> {
    if paths.is_empty() {
        return Err(AppError::Invalid("nothing to upload".into()));
    }
    paths
        .iter()
        .map(|p| match (p.file_name(), p.symlink_metadata()) {
            (Some(name), Ok(_)) => Ok((p.clone(), name.to_owned())),
            (None, _) => Err(AppError::Invalid(format!("invalid file name {p:?}"))),
            (_, Err(err)) => Err(AppError::Io {
                path: p.display().to_string(),
                err,
            }),
        })
        .collect()
}

/// Writes a tar of `items` (each under its own name; folders with everything in them,
/// symbolic links as links) to `out`.
fn write_tar_of_paths(
    items: &[(PathBuf, std::ffi::OsString)],
    out: impl std::io::Write,
) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    for (path, name) in items {
        if path.symlink_metadata()?.is_dir() {
            b.append_dir_all(name, path)?;
        } else {
            b.append_path_with_name(path, name)?;
        }
    }
    b.finish()
}

/// Streams the host files and folders `paths` into folder `dir` of container `id`, as
/// `docker cp PATH c:DIR` does: the tar is made while it is sent, never held in memory.
pub async fn put_paths(e: &Engine, id: &str, dir: &str, paths: &[PathBuf]) -> Result<()> {
    let items = dropped_names(paths)?;
    let (w, r) = tokio::io::duplex(256 * 1024);
    let mut out = SyncIoBridge::new(w);
    let writer = tokio::task::spawn_blocking(move || {
        write_tar_of_paths(&items, &mut out)?;
        out.shutdown()
    });
    let put = put_tar(e, id, dir, false, tokio_util::io::ReaderStream::new(r)).await;
    let wrote = writer.await.map_err(|x| AppError::Client(x.to_string()))?;
    put?;
    wrote.map_err(|err| AppError::Io {
        path: format!("{paths:?}"),
        err,
    })?;
    tracing::info!(container = %id, %dir, files = paths.len(), "paths uploaded");
    Ok(())
}

/// Uploads host files and folders (dropped on the Files tab) into folder `dir` of container
/// `id`.
#[tauri::command]
pub async fn containers_files_upload_paths(
    state: State<'_, AppState>,
    id: String,
    dir: String,
    paths: Vec<PathBuf>,
) -> Result<()> {
    put_paths(&state.engine(), &id, &dir, &paths).await
}

/// Uploads one file into the folder of a container (headers: `x-berth-id`, see [`Upload`]).
#[tauri::command]
pub async fn containers_files_upload(
    state: State<'_, AppState>,
    request: tauri::ipc::Request<'_>,
) -> Result<()> {
    let u = Upload::from_request(&request, "x-berth-id")?;
    put_file(&state.engine(), &u.target, &u.dir, &u.name, u.data).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar as the engine sends a folder: the folder first, then everything below it.
    fn folder_tar(base: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, p, &[][..]).unwrap();
        };
        if base != "." {
            dir(&mut b, base);
        }
        dir(&mut b, &format!("{base}/sub"));
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o600);
        b.append_data(&mut h, format!("{base}/sub/deep.txt"), &b"abc"[..])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_mtime(42);
        b.append_data(&mut h, format!("{base}/a.txt"), &b"hello"[..])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, format!("{base}/ln"), "sub/deep.txt")
            .unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn lists_direct_children_folders_first() {
        // As the engine names them: `etc/…` for /etc, `./…` for / (no top entry).
        for (base, named) in [("etc", true), (".", false), ("share", true)] {
            let (got, truncated) = list_children(&folder_tar(base)[..], named, 100).unwrap();
            let names: Vec<_> = got.iter().map(|e| (e.name.as_str(), e.kind)).collect();
            assert_eq!(
                names,
                [("sub", "dir"), ("a.txt", "file"), ("ln", "link")],
                "{base}"
            );
            assert!(!truncated);
            assert_eq!((got[1].size, got[1].mode, got[1].mtime), (5, 0o644, 42));
            assert_eq!(got[2].link.as_deref(), Some("sub/deep.txt"));
            assert_eq!(got[1].link, None);
        }
        let (got, truncated) = list_children(&folder_tar("etc")[..], true, 2).unwrap();
        assert_eq!((got.len(), truncated), (2, true));
    }

    #[test]
    fn reads_a_file_as_text_or_not() {
        let tar = tar_of_file("x.txt", "héllo\n".as_bytes(), 7).unwrap();
        let v = read_file(&tar[..], 100).unwrap();
        assert_eq!(
            (v.size, v.text.as_deref(), v.truncated),
            (7, Some("héllo\n"), false)
        );
        // Cut inside "é": the half character is dropped, the file is still text.
        let v = read_file(&tar[..], 2).unwrap();
        assert_eq!((v.text.as_deref(), v.truncated), (Some("h"), true));
        let bin = tar_of_file("b", &[1, 0, 2], 0).unwrap();
        assert_eq!(read_file(&bin[..], 100).unwrap().text, None);
        let folder = read_file(&folder_tar("etc")[..], 100).unwrap_err();
        assert!(
            folder.to_string().contains("not a regular file (dir)"),
            "{folder}"
        );
    }

    #[test]
    fn dropped_paths_become_one_tar_with_their_folders() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("folder/inner")).unwrap();
        std::fs::write(d.path().join("folder/inner/x.txt"), "x").unwrap();
        std::fs::write(d.path().join("one.txt"), "one").unwrap();
        let items = dropped_names(&[d.path().join("one.txt"), d.path().join("folder")]).unwrap();
        let mut tar = Vec::new();
        write_tar_of_paths(&items, &mut tar).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| {
                let name = e.unwrap().path().unwrap().display().to_string();
                // Folders may be written with a trailing slash.
                name.trim_end_matches('/').to_string()
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["folder", "folder/inner", "folder/inner/x.txt", "one.txt"]
        );
        assert!(dropped_names(&[]).is_err());
        assert!(dropped_names(&[d.path().join("missing")]).is_err());
    }

    #[test]
    fn downloads_never_overwrite() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(unique_path(d.path(), "a.tar"), d.path().join("a.tar"));
        std::fs::write(d.path().join("a.tar"), "").unwrap();
        assert_eq!(unique_path(d.path(), "a.tar"), d.path().join("a (1).tar"));
        std::fs::write(d.path().join("a (1).tar"), "").unwrap();
        assert_eq!(unique_path(d.path(), "a.tar"), d.path().join("a (2).tar"));
        std::fs::write(d.path().join(".profile"), "").unwrap();
        assert_eq!(
            unique_path(d.path(), ".profile"),
            d.path().join(".profile (1)")
        );
    }

    #[test]
    fn upload_names_and_header_escapes() {
        assert_eq!(plain_name("a b.txt").unwrap(), "a b.txt");
        for bad in ["", ".", "..", "a/b", "/x"] {
            assert!(plain_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(percent_decode("%2Fsrv%2Fa%20b%C3%BC").unwrap(), "/srv/a bü");
        assert!(percent_decode("%4").is_err());
        assert_eq!(base_name("/srv/app/"), "app");
        assert_eq!(base_name("/"), "root");
        assert!(top_named("/etc") && top_named("/srv/app/"));
        assert!(!top_named("/") && !top_named("/srv/.") && !top_named(""));
    }
}
