//! Shared folders: host file events (the `notify` crate) under each share, batched and sent to
//! the guest, which replays them so inotify watchers in containers wake up.

use std::path::PathBuf;
use std::time::Duration;

use berth_agent_proto::{FileEvent, FileEventKind, Request};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::control::ControlClient;
use crate::error::{HostError, Result};

/// How long events are gathered before one `file_events` request goes out.
const BATCH: Duration = Duration::from_millis(20);

/// Watches `dirs` recursively; dropping the watcher stops it.
pub fn watch(
    dirs: &[PathBuf],
) -> Result<(
    notify::RecommendedWatcher,
    mpsc::UnboundedReceiver<FileEvent>,
)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        let kind = match ev.kind {
            EventKind::Create(_) => FileEventKind::Create,
            EventKind::Modify(notify::event::ModifyKind::Name(notify::event::RenameMode::From))
            | EventKind::Remove(_) => FileEventKind::Remove,
            // The guest's replay re-sets times, which the host reports as a metadata change:
            // forwarding those would loop forever.
            EventKind::Modify(notify::event::ModifyKind::Metadata(_)) => return,
            EventKind::Modify(_) => FileEventKind::Modify,
            _ => return,
        };
        for p in ev.paths {
            let _ = tx.send(FileEvent {
                path: p.to_string_lossy().into_owned(),
                kind,
            });
        }
    })
    .map_err(|e| HostError::Command {
        what: "file watcher".into(),
        detail: e.to_string(),
    })?;
    for d in dirs {
        if let Err(e) = w.watch(d, RecursiveMode::Recursive) {
            tracing::warn!(dir = %d.display(), error = %e, "cannot watch shared folder");
        }
    }
    Ok((w, rx))
}

/// Sends batched events to the guest until the channel or the control connection closes.
pub async fn forward_events(mut rx: mpsc::UnboundedReceiver<FileEvent>, control: ControlClient) {
    while let Some(first) = rx.recv().await {
        let mut events = vec![first];
        tokio::time::sleep(BATCH).await;
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        events.dedup();
        if let Err(e) = control.request(Request::FileEvents { events }).await {
            tracing::debug!(error = %e, "file events not delivered");
            if !control.is_open() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_and_remove_are_reported() {
        let d = tempfile::tempdir().unwrap();
        let (_w, mut rx) = watch(&[d.path().to_path_buf()]).unwrap();
        let f = d.path().join("x");
        std::fs::write(&f, b"1").unwrap();
        std::fs::remove_file(&f).unwrap();
        let mut kinds = vec![];
        while !kinds.contains(&FileEventKind::Remove) {
            let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("no file event within 5 s")
                .unwrap();
            assert!(std::path::Path::new(&ev.path).ends_with("x"), "{}", ev.path);
            kinds.push(ev.kind);
        }
        assert_eq!(kinds[0], FileEventKind::Create);
    }
}
