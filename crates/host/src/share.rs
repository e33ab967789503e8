//! Shared folders: host file events (the `notify` crate) under each share, batched, turned into
//! `file_events` ([`events`]) and sent to the guest, which replays them so inotify watchers in
//! containers wake up.

use std::path::PathBuf;
use std::time::Duration;

use berth_agent_proto::{FileEvent, FileEventKind, Request, FEATURE_FILE_RENAME};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::control::ControlClient;
use crate::error::{HostError, Result};

mod events;

/// How long events are gathered before one `file_events` request goes out.
const BATCH: Duration = Duration::from_millis(20);

/// Watches `dirs` recursively; dropping the watcher stops it.
pub fn watch(
    dirs: &[PathBuf],
) -> Result<(
    notify::RecommendedWatcher,
    mpsc::UnboundedReceiver<notify::Event>,
)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            let _ = tx.send(ev);
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
pub async fn forward_events(
    mut rx: mpsc::UnboundedReceiver<notify::Event>,
    control: ControlClient,
) {
    let renames = control.agent_has(FEATURE_FILE_RENAME);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        tokio::time::sleep(BATCH).await;
        while let Ok(e) = rx.try_recv() {
            batch.push(e);
        }
        let mut events = events::from_notify(&batch, |p| p.symlink_metadata().is_ok());
        if !renames {
            events = without_renames(events);
        }
        if events.is_empty() {
            continue;
        }
        if let Err(e) = control.request(Request::FileEvents { events }).await {
            tracing::debug!(error = %e, "file events not delivered");
            if !control.is_open() {
                return;
            }
        }
    }
}

/// For an agent that predates [`FileEventKind::Rename`]: each rename as the remove of its old
/// path and the create of its new one.
fn without_renames(events: Vec<FileEvent>) -> Vec<FileEvent> {
    let mut out = Vec::with_capacity(events.len());
    for ev in events {
        match (ev.kind, ev.from) {
            (FileEventKind::Rename, Some(from)) => {
                out.push(FileEvent::new(from, FileEventKind::Remove));
                out.push(FileEvent::new(ev.path, FileEventKind::Create));
            }
            (kind, _) => out.push(FileEvent::new(ev.path, kind)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real watcher on this host's file system, through the same mapping as the forwarder.
    #[tokio::test]
    async fn create_rename_and_remove_are_reported() {
        let d = tempfile::tempdir().unwrap();
        let (_w, mut rx) = watch(&[d.path().to_path_buf()]).unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::write(&a, b"1").unwrap();
        std::fs::rename(&a, &b).unwrap();
        std::fs::remove_file(&b).unwrap();
        let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let b_removed = FileEvent::new(s(&b), FileEventKind::Remove);
        let mut batch = vec![];
        let mut events = vec![];
        while !events.contains(&b_removed) {
            let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("no file event within 5 s")
                .unwrap();
            batch.push(ev);
            events = events::from_notify(&batch, |p| p.exists());
        }
        let want = [
            FileEvent::new(s(&a), FileEventKind::Create),
            FileEvent::rename(s(&a), s(&b)),
            FileEvent::new(s(&b), FileEventKind::Remove),
        ];
        let got: Vec<_> = events
            .into_iter()
            .filter(|e| e.kind != FileEventKind::Modify)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_older_agent_gets_a_rename_as_remove_and_create() {
        let got = without_renames(vec![
            FileEvent::new("/s/x", FileEventKind::Modify),
            FileEvent::rename("/s/a", "/s/b"),
        ]);
        assert_eq!(
            got,
            [
                FileEvent::new("/s/x", FileEventKind::Modify),
                FileEvent::new("/s/a", FileEventKind::Remove),
                FileEvent::new("/s/b", FileEventKind::Create),
            ]
        );
    }
}
