//! Replays host file events in the guest. virtiofs does not forward host-side inotify, so the
//! agent touches what changed: re-setting a file's own times fires IN_ATTRIB on the file (seen
//! by watchers of its directory, with its name), and the lookup refreshes virtiofs's cached
//! entry; for a removal the parent directory is touched so watchers of it wake up and re-scan.
//! Watchers thus see IN_ATTRIB, not IN_CREATE/IN_DELETE (those need kernel help). The host
//! ignores the metadata change the re-set causes, so nothing loops.

use std::path::Path;

use berth_agent_proto::{FileEvent, FileEventKind};

pub(super) fn apply(events: &[FileEvent]) {
    for ev in events {
        let path = Path::new(&ev.path);
        let r = match ev.kind {
            FileEventKind::Create | FileEventKind::Modify => retouch(path),
            FileEventKind::Remove => {
                let _ = std::fs::symlink_metadata(path);
                path.parent().map_or(Ok(()), retouch)
            }
        };
        if let Err(e) = r {
            tracing::debug!(path = %path.display(), error = %e, "cannot replay file event");
        }
    }
}

/// Sets the path's times to themselves (no content change, but an inotify event).
fn retouch(path: &Path) -> std::io::Result<()> {
    let md = std::fs::symlink_metadata(path)?;
    let times = std::fs::FileTimes::new()
        .set_accessed(md.accessed()?)
        .set_modified(md.modified()?);
    let f = std::fs::File::options()
        .read(true)
        .open(path)
        .or_else(|_| std::fs::File::open(path))?;
    f.set_times(times)
}
