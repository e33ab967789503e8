//! Replays host file events in the guest. virtiofs does not forward host-side inotify, so the
//! agent makes each event visible to the guest's watchers itself, in one of two ways:
//!
//! - [`KernelReplay`], with the image's `berth_fsnotify` module (`vm-image/fsnotify/`): each
//!   event is written to `/dev/berth-fsnotify`, and the kernel raises what a local change would
//!   have raised: `IN_CREATE`, `IN_MODIFY`, `IN_DELETE`, `IN_MOVED_FROM` + `IN_MOVED_TO` with one
//!   cookie. The module also drops virtiofs's cached entry of a changed name.
//! - [`Retouch`], without it (the native engine, an image without the module): re-setting a
//!   file's own times fires `IN_ATTRIB` on it (seen by watchers of its directory, with its
//!   name) and the lookup refreshes virtiofs's cached entry; for a removal the parent directory
//!   is touched so watchers of it wake up and re-scan. The host ignores the metadata change the
//!   re-set causes, so nothing loops.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use berth_agent_proto::{FileEvent, FileEventKind};

/// The module's device and name.
const DEVICE: &str = "/dev/berth-fsnotify";
const MODULE: &str = "berth_fsnotify";

/// Replays `events` through the module when it is loaded, else by re-touching.
pub(super) fn apply(events: &[FileEvent]) {
    match KernelReplay::open() {
        Ok(mut k) => replay_all(&mut k, events),
        Err(_) => replay_all(&mut Retouch, events),
    }
}

/// Loads the module if its device is missing (called when a share is mounted, before events
/// come); an image without it keeps the re-touch replay.
pub(super) fn load_module() {
    if Path::new(DEVICE).exists() {
        return;
    }
    match std::process::Command::new("modprobe")
        .args(["-q", MODULE])
        .status()
    {
        Ok(s) if s.success() => {
            tracing::info!("{MODULE} loaded: file events replayed as the kernel gives them")
        }
        _ => tracing::info!("no {MODULE} module: file events replayed as IN_ATTRIB"),
    }
}

/// How the guest makes one host event visible to its watchers.
trait Replay {
    fn replay(&mut self, ev: &FileEvent) -> io::Result<()>;
}

fn replay_all(how: &mut impl Replay, events: &[FileEvent]) {
    for ev in events {
        if let Err(e) = how.replay(ev) {
            tracing::debug!(path = ev.path, kind = ?ev.kind, error = %e, "cannot replay file event");
        }
    }
}

/// Writes each event to the module's device (one record per write).
struct KernelReplay(File);

impl KernelReplay {
    fn open() -> io::Result<Self> {
        File::options().write(true).open(DEVICE).map(Self)
    }
}

impl Replay for KernelReplay {
    fn replay(&mut self, ev: &FileEvent) -> io::Result<()> {
        self.0.write_all(&record(ev)?)
    }
}

/// The module's record (ABI 1, see `vm-image/fsnotify/berth_fsnotify.c`): four native-endian
/// u32s (version, kind, path length, second path length), then the path and, for a move, the
/// path it moved to.
fn record(ev: &FileEvent) -> io::Result<Vec<u8>> {
    const ABI: u32 = 1;
    let (kind, path, to) = match (ev.kind, ev.from.as_deref()) {
        (FileEventKind::Create, _) => (1u32, ev.path.as_str(), ""),
        (FileEventKind::Modify, _) => (2, ev.path.as_str(), ""),
        (FileEventKind::Remove, _) => (3, ev.path.as_str(), ""),
        (FileEventKind::Rename, Some(from)) => (4, from, ev.path.as_str()),
        (FileEventKind::Rename, None) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "rename without its old path",
            ))
        }
    };
    let len = |s: &str| {
        u32::try_from(s.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path too long"))
    };
    let mut out = Vec::with_capacity(16 + path.len() + to.len());
    for n in [ABI, kind, len(path)?, len(to)?] {
        out.extend_from_slice(&n.to_ne_bytes());
    }
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(to.as_bytes());
    Ok(out)
}

/// Re-sets times: watchers see `IN_ATTRIB`.
struct Retouch;

impl Replay for Retouch {
    fn replay(&mut self, ev: &FileEvent) -> io::Result<()> {
        let path = Path::new(&ev.path);
        match ev.kind {
            FileEventKind::Create | FileEventKind::Modify => retouch(path),
            FileEventKind::Remove => retouch_parent(path),
            FileEventKind::Rename => {
                if let Some(from) = &ev.from {
                    retouch_parent(Path::new(from))?;
                }
                retouch(path)
            }
        }
    }
}

/// For a name that is gone: refreshes its entry, then touches its directory.
fn retouch_parent(path: &Path) -> io::Result<()> {
    let _ = std::fs::symlink_metadata(path);
    path.parent().map_or(Ok(()), retouch)
}

/// Sets the path's times to themselves (no content change, but an inotify event).
fn retouch(path: &Path) -> io::Result<()> {
    let md = std::fs::symlink_metadata(path)?;
    let times = std::fs::FileTimes::new()
        .set_accessed(md.accessed()?)
        .set_modified(md.modified()?);
    let f = File::options()
        .read(true)
        .open(path)
        .or_else(|_| File::open(path))?;
    f.set_times(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(r: &[u8]) -> [u32; 4] {
        std::array::from_fn(|i| u32::from_ne_bytes(r[i * 4..i * 4 + 4].try_into().unwrap()))
    }

    #[test]
    fn records_carry_kind_and_paths() {
        let r = record(&FileEvent::new("/s/a", FileEventKind::Create)).unwrap();
        assert_eq!(words(&r), [1, 1, 4, 0]);
        assert_eq!(&r[16..], b"/s/a");
        let r = record(&FileEvent::new("/s/a", FileEventKind::Remove)).unwrap();
        assert_eq!(words(&r)[1], 3);
        let r = record(&FileEvent::rename("/s/old", "/s/b")).unwrap();
        assert_eq!(words(&r), [1, 4, 6, 4]);
        assert_eq!(&r[16..], b"/s/old/s/b");
    }

    #[test]
    fn a_rename_without_its_old_path_is_refused() {
        let ev = FileEvent {
            from: None,
            ..FileEvent::rename("/a", "/b")
        };
        assert!(record(&ev).is_err());
    }

    /// Without the module: a create re-sets the file's times, a rename touches the old
    /// name's directory and the new file (both keep their times).
    #[test]
    fn retouch_keeps_times_and_follows_renames() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("b");
        std::fs::write(&f, "x").unwrap();
        let before = std::fs::metadata(&f).unwrap().modified().unwrap();
        let from = d.path().join("a").to_string_lossy().into_owned();
        let to = f.to_string_lossy().into_owned();
        Retouch.replay(&FileEvent::rename(from, to)).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().modified().unwrap(), before);
        let gone = d.path().join("gone").to_string_lossy().into_owned();
        Retouch
            .replay(&FileEvent::new(gone, FileEventKind::Remove))
            .unwrap();
    }
}
