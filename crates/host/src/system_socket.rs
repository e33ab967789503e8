//! The opt-in system Docker socket: `/var/run/docker.sock` (configurable) as a symlink to
//! Berth's forwarded socket, so tools that ignore `DOCKER_HOST` and contexts find the engine.
//!
//! Only a free path is taken: an existing socket, file or link pointing elsewhere is never
//! replaced, and only a link to our own socket is removed. The link made is recorded in
//! `run/system-socket.link`, so `berth stop` removes exactly it even if the config changed.

use std::path::{Path, PathBuf};

use crate::error::{HostError, Result};
use crate::StateDir;

/// The conventional path of the system socket.
pub const DEFAULT_PATH: &str = "/var/run/docker.sock";

/// What [`enable`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linked {
    /// The link was made.
    Created,
    /// The path already was our link.
    AlreadyOurs,
    /// The path is taken by something else, left alone; says what.
    Occupied(String),
}

/// What [`disable`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlinked {
    /// Our link was removed.
    Removed(PathBuf),
    /// The recorded path no longer is our link (replaced meanwhile); left alone, says what.
    NotOurs(PathBuf, String),
    /// No link was recorded.
    NothingRecorded,
}

/// Links `path` to the state's docker socket when `path` is free, and records it.
pub fn enable(state: &StateDir, path: &Path) -> Result<Linked> {
    let target = state.docker_socket();
    let outcome = match describe(path, &target)? {
        Some(Existing::Ours) => Linked::AlreadyOurs,
        Some(Existing::Other(what)) => return Ok(Linked::Occupied(what)),
        None => match std::os::unix::fs::symlink(&target, path) {
            Ok(()) => Linked::Created,
            // Taken between the check and the link.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match describe(path, &target)? {
                    Some(Existing::Ours) => Linked::AlreadyOurs,
                    Some(Existing::Other(what)) => return Ok(Linked::Occupied(what)),
                    None => return Err(HostError::io(path)(e)),
                }
            }
            Err(e) => return Err(HostError::io(path)(e)),
        },
    };
    let record = record_file(state);
    std::fs::write(&record, path.as_os_str().as_encoded_bytes()).map_err(HostError::io(&record))?;
    Ok(outcome)
}

/// Removes the recorded link if it still points to the state's docker socket.
pub fn disable(state: &StateDir) -> Result<Unlinked> {
    let record = record_file(state);
    let path = match std::fs::read(&record) {
        Ok(b) => PathBuf::from(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Unlinked::NothingRecorded),
        Err(e) => return Err(HostError::io(&record)(e)),
    };
    let outcome = match describe(&path, &state.docker_socket())? {
        Some(Existing::Ours) => match std::fs::remove_file(&path) {
            Ok(()) => Unlinked::Removed(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Unlinked::Removed(path),
            Err(e) => return Err(HostError::io(&path)(e)),
        },
        Some(Existing::Other(what)) => Unlinked::NotOurs(path, what),
        None => Unlinked::Removed(path),
    };
    std::fs::remove_file(&record).map_err(HostError::io(&record))?;
    Ok(outcome)
}

/// What is at a system socket path now, as the app's Settings shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Nothing: Berth may link it.
    Free,
    /// A link to this state's docker socket.
    Ours,
    /// Something else (says what); never replaced.
    Other(String),
}

/// What is at `path` now, compared with this state's docker socket.
pub fn inspect(state: &StateDir, path: &Path) -> Result<LinkState> {
    Ok(match describe(path, &state.docker_socket())? {
        None => LinkState::Free,
        Some(Existing::Ours) => LinkState::Ours,
        Some(Existing::Other(what)) => LinkState::Other(what),
    })
}

/// Removes `path` when it is a link to this state's docker socket (and forgets the record of
/// it); anything else is left alone and said.
pub fn remove(state: &StateDir, path: &Path) -> Result<Unlinked> {
    match describe(path, &state.docker_socket())? {
        Some(Existing::Ours) => match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(HostError::io(path)(e)),
        },
        Some(Existing::Other(what)) => return Ok(Unlinked::NotOurs(path.to_path_buf(), what)),
        None => return Ok(Unlinked::NothingRecorded),
    }
    if recorded(state).as_deref() == Some(path) {
        let record = record_file(state);
        std::fs::remove_file(&record).map_err(HostError::io(&record))?;
    }
    Ok(Unlinked::Removed(path.to_path_buf()))
}

/// The shell command that does what Berth was not permitted to (the path needs root).
pub fn link_command(state: &StateDir, path: &Path) -> String {
    format!(
        "sudo ln -s {} {}",
        state.docker_socket().display(),
        path.display()
    )
}

/// As [`link_command`], to remove the link.
pub fn unlink_command(path: &Path) -> String {
    format!("sudo rm {}", path.display())
}

/// The link currently recorded (for `berth status`).
pub fn recorded(state: &StateDir) -> Option<PathBuf> {
    let b = std::fs::read(record_file(state)).ok()?;
    Some(PathBuf::from(String::from_utf8_lossy(&b).into_owned()))
}

fn record_file(state: &StateDir) -> PathBuf {
    state.run_dir().join("system-socket.link")
}

enum Existing {
    Ours,
    Other(String),
}

/// What is at `path` now, `None` when nothing is.
fn describe(path: &Path, target: &Path) -> Result<Option<Existing>> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(HostError::io(path)(e)),
    };
    let ft = meta.file_type();
    let what = if ft.is_symlink() {
        let to = std::fs::read_link(path).map_err(HostError::io(path))?;
        if to == target {
            return Ok(Some(Existing::Ours));
        }
        format!("a symlink to {}", to.display())
    } else if ft.is_socket() {
        "a socket (another Docker engine?)".to_string()
    } else if ft.is_dir() {
        "a directory".to_string()
    } else {
        "a file".to_string()
    };
    Ok(Some(Existing::Other(what)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn state() -> (tempfile::TempDir, StateDir) {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path().join("berth"));
        s.create().unwrap();
        (d, s)
    }

    #[test]
    fn free_path_is_linked_and_only_our_link_is_removed() {
        let (d, s) = state();
        let sys = d.path().join("docker.sock");
        assert_eq!(enable(&s, &sys).unwrap(), Linked::Created);
        assert_eq!(std::fs::read_link(&sys).unwrap(), s.docker_socket());
        assert_eq!(recorded(&s), Some(sys.clone()));
        assert_eq!(enable(&s, &sys).unwrap(), Linked::AlreadyOurs);
        assert_eq!(disable(&s).unwrap(), Unlinked::Removed(sys.clone()));
        assert!(std::fs::symlink_metadata(&sys).is_err());
        assert_eq!(recorded(&s), None);
        assert_eq!(disable(&s).unwrap(), Unlinked::NothingRecorded);
    }

    #[test]
    fn a_real_socket_or_foreign_link_is_never_replaced() {
        let (d, s) = state();
        let sys = d.path().join("docker.sock");
        let real = std::os::unix::net::UnixListener::bind(&sys).unwrap();
        match enable(&s, &sys).unwrap() {
            Linked::Occupied(what) => assert!(what.contains("socket"), "{what}"),
            other => panic!("{other:?}"),
        }
        assert!(std::fs::symlink_metadata(&sys)
            .unwrap()
            .file_type()
            .is_socket());
        assert_eq!(recorded(&s), None);
        drop(real);
        std::fs::remove_file(&sys).unwrap();

        let elsewhere = d.path().join("elsewhere.sock");
        std::os::unix::fs::symlink(&elsewhere, &sys).unwrap();
        match enable(&s, &sys).unwrap() {
            Linked::Occupied(what) => assert!(what.contains("elsewhere.sock"), "{what}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_link(&sys).unwrap(), elsewhere);
    }

    #[test]
    fn a_link_replaced_after_start_is_left_at_stop() {
        let (d, s) = state();
        let sys = d.path().join("docker.sock");
        assert_eq!(enable(&s, &sys).unwrap(), Linked::Created);
        std::fs::remove_file(&sys).unwrap();
        let other = d.path().join("other.sock");
        std::os::unix::fs::symlink(&other, &sys).unwrap();
        match disable(&s).unwrap() {
            Unlinked::NotOurs(p, what) => {
                assert_eq!(p, sys);
                assert!(what.contains("other.sock"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_link(&sys).unwrap(), other);
        assert_eq!(recorded(&s), None);
    }

    #[test]
    fn inspect_and_remove_touch_only_our_link() {
        let (d, s) = state();
        let sys = d.path().join("docker.sock");
        assert_eq!(inspect(&s, &sys).unwrap(), LinkState::Free);
        assert_eq!(remove(&s, &sys).unwrap(), Unlinked::NothingRecorded);
        enable(&s, &sys).unwrap();
        assert_eq!(inspect(&s, &sys).unwrap(), LinkState::Ours);
        assert_eq!(remove(&s, &sys).unwrap(), Unlinked::Removed(sys.clone()));
        assert_eq!(recorded(&s), None);
        assert_eq!(inspect(&s, &sys).unwrap(), LinkState::Free);
        std::fs::write(&sys, b"x").unwrap();
        assert_eq!(
            inspect(&s, &sys).unwrap(),
            LinkState::Other("a file".into())
        );
        assert!(matches!(remove(&s, &sys).unwrap(), Unlinked::NotOurs(..)));
        assert!(sys.is_file());
        assert_eq!(
            link_command(&s, &sys),
            format!(
                "sudo ln -s {} {}",
                s.docker_socket().display(),
                sys.display()
            )
        );
    }
}
