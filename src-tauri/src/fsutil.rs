//! File writes the app's own state files share.

use std::io::Write;
use std::path::Path;

use crate::error::{AppError, Result};

/// An [`AppError::Io`] naming `path`.
pub fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> AppError {
    let path = path.display().to_string();
    move |err| AppError::Io { path, err }
}

/// Writes `body` to `path` atomically: a temp file beside it (flushed to disk), then a rename,
/// so a reader or a crash sees the old file or the new one, never half of one. Creates the
/// parent folder.
pub fn write_atomic(path: &Path, body: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()
    };
    write().map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path().join("a")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
