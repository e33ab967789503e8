//! Host file events as the guest replays them: `notify`'s events of one batch become
//! create / modify / remove / rename [`FileEvent`]s.
//!
//! Renames come differently per platform: inotify (Linux) gives the old name (`From`), the new
//! one (`To`) with the same tracker (the kernel's cookie), then both paths (`Both`);
//! `ReadDirectoryChangesW` (Windows) gives `From` then `To`, without tracker; FSEvents (macOS)
//! and kqueue give each side as `Any`, without saying which. A `From` followed at once by a
//! `To` of the same tracker is one rename (`Both` repeats it and is skipped); an `Any` is the
//! new side when its path exists and the old side when it does not. A side left alone left or
//! entered the watched tree: the old side is a remove, the new side a create.

use std::path::{Path, PathBuf};

use berth_agent_proto::{FileEvent, FileEventKind};
use notify::event::{ModifyKind, RenameMode};
use notify::EventKind;

/// The guest's events for one batch, in order; `exists` says whether a host path exists now
/// (for renames whose side the platform does not tell).
pub(super) fn from_notify(
    batch: &[notify::Event],
    exists: impl Fn(&Path) -> bool,
) -> Vec<FileEvent> {
    let mut pairing = Pairing::default();
    for ev in batch {
        for path in &ev.paths {
            match side(&ev.kind, path, &exists) {
                Some(Side::Plain(kind)) => pairing.plain(path, kind),
                Some(Side::Old) => pairing.old_name(path, ev.attrs.tracker()),
                Some(Side::New) => pairing.new_name(path, ev.attrs.tracker()),
                None => {}
            }
        }
    }
    let mut out = pairing.finish();
    out.dedup();
    out
}

/// What one path of a `notify` event is to the guest.
enum Side {
    Plain(FileEventKind),
    /// The old name of a rename.
    Old,
    /// The new name of a rename.
    New,
}

fn side(kind: &EventKind, path: &Path, exists: impl Fn(&Path) -> bool) -> Option<Side> {
    Some(match kind {
        EventKind::Create(_) => Side::Plain(FileEventKind::Create),
        EventKind::Remove(_) => Side::Plain(FileEventKind::Remove),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => Side::Old,
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Side::New,
        // Both paths again, after their `From` and `To`.
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => return None,
        EventKind::Modify(ModifyKind::Name(_)) if exists(path) => Side::New,
        EventKind::Modify(ModifyKind::Name(_)) => Side::Old,
        // The guest's replay of older agents re-sets times, which the host reports as a
        // metadata change: forwarding those would loop forever.
        EventKind::Modify(ModifyKind::Metadata(_)) => return None,
        EventKind::Modify(_) => Side::Plain(FileEventKind::Modify),
        _ => return None,
    })
}

/// Events so far, and an old name waiting for its new one.
#[derive(Default)]
struct Pairing {
    out: Vec<FileEvent>,
    old: Option<(PathBuf, Option<usize>)>,
    /// The old name of the last rename: inotify reports a moved watched folder once more
    /// (`IN_MOVE_SELF`, as `From` without tracker) after the pair.
    renamed: Option<PathBuf>,
}

impl Pairing {
    fn plain(&mut self, path: &Path, kind: FileEventKind) {
        self.flush_old();
        self.push(FileEvent::new(text(path), kind));
    }

    fn old_name(&mut self, path: &Path, tracker: Option<usize>) {
        if tracker.is_none() && self.renamed.as_deref() == Some(path) {
            return;
        }
        self.flush_old();
        self.old = Some((path.to_path_buf(), tracker));
    }

    fn new_name(&mut self, path: &Path, tracker: Option<usize>) {
        match self.old.take() {
            Some((old, t)) if t == tracker => {
                self.out.push(FileEvent::rename(text(&old), text(path)));
                self.renamed = Some(old);
            }
            old => {
                self.old = old;
                self.plain(path, FileEventKind::Create);
            }
        }
    }

    fn push(&mut self, ev: FileEvent) {
        self.renamed = None;
        self.out.push(ev);
    }

    /// An old name without its new one: moved out of the watched tree.
    fn flush_old(&mut self) {
        if let Some((old, _)) = self.old.take() {
            self.push(FileEvent::new(text(&old), FileEventKind::Remove));
        }
    }

    fn finish(mut self) -> Vec<FileEvent> {
        self.flush_old();
        self.out
    }
}

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind};
    use notify::Event;

    fn ev(kind: EventKind, paths: &[&str]) -> Event {
        paths
            .iter()
            .fold(Event::new(kind), |e, p| e.add_path(PathBuf::from(p)))
    }

    fn name(mode: RenameMode, paths: &[&str], tracker: Option<usize>) -> Event {
        let e = ev(EventKind::Modify(ModifyKind::Name(mode)), paths);
        match tracker {
            Some(t) => e.set_tracker(t),
            None => e,
        }
    }

    fn map(batch: &[Event]) -> Vec<FileEvent> {
        from_notify(batch, |p| p.starts_with("/s/exists"))
    }

    #[test]
    fn create_modify_remove_map_one_to_one_and_metadata_is_dropped() {
        let got = map(&[
            ev(EventKind::Create(CreateKind::File), &["/s/a"]),
            ev(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                &["/s/a"],
            ),
            ev(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                &["/s/a"],
            ),
            ev(
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                &["/s/a"],
            ),
            ev(EventKind::Remove(RemoveKind::File), &["/s/a"]),
            ev(EventKind::Access(notify::event::AccessKind::Any), &["/s/a"]),
        ]);
        assert_eq!(
            got,
            [
                FileEvent::new("/s/a", FileEventKind::Create),
                FileEvent::new("/s/a", FileEventKind::Modify),
                FileEvent::new("/s/a", FileEventKind::Remove),
            ]
        );
    }

    /// Linux: From, To (same cookie), Both; a moved watched folder adds a From of itself.
    #[test]
    fn inotify_rename_is_one_rename() {
        let got = map(&[
            name(RenameMode::From, &["/s/d"], Some(7)),
            name(RenameMode::To, &["/s/e"], Some(7)),
            name(RenameMode::Both, &["/s/d", "/s/e"], Some(7)),
            name(RenameMode::From, &["/s/d"], None),
        ]);
        assert_eq!(got, [FileEvent::rename("/s/d", "/s/e")]);
    }

    /// Windows: From then To, no tracker.
    #[test]
    fn windows_rename_is_one_rename() {
        let got = map(&[
            name(RenameMode::From, &["/s/a"], None),
            name(RenameMode::To, &["/s/b"], None),
        ]);
        assert_eq!(got, [FileEvent::rename("/s/a", "/s/b")]);
    }

    /// macOS: each side as Any; the one that exists is the new name.
    #[test]
    fn fsevents_rename_sides_are_told_apart_by_existence() {
        let got = map(&[
            name(RenameMode::Any, &["/s/gone"], None),
            name(RenameMode::Any, &["/s/exists"], None),
        ]);
        assert_eq!(got, [FileEvent::rename("/s/gone", "/s/exists")]);
    }

    #[test]
    fn a_lone_side_is_a_move_out_or_in() {
        let got = map(&[
            name(RenameMode::From, &["/s/out"], Some(1)),
            ev(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                &["/s/x"],
            ),
            name(RenameMode::To, &["/s/in"], Some(2)),
        ]);
        assert_eq!(
            got,
            [
                FileEvent::new("/s/out", FileEventKind::Remove),
                FileEvent::new("/s/x", FileEventKind::Modify),
                FileEvent::new("/s/in", FileEventKind::Create),
            ]
        );
    }

    /// Cookies that do not match are two moves, one out and one in.
    #[test]
    fn sides_of_different_renames_are_not_paired() {
        let got = map(&[
            name(RenameMode::From, &["/s/a"], Some(1)),
            name(RenameMode::To, &["/s/b"], Some(2)),
        ]);
        assert_eq!(
            got,
            [
                FileEvent::new("/s/a", FileEventKind::Remove),
                FileEvent::new("/s/b", FileEventKind::Create),
            ]
        );
    }

    /// A batch that ends between the two sides: the old name goes as a remove, and the new
    /// one (next batch, with its Both) as a create.
    #[test]
    fn a_rename_split_across_batches_is_a_remove_and_a_create() {
        let first = map(&[name(RenameMode::From, &["/s/a"], Some(3))]);
        let second = map(&[
            name(RenameMode::To, &["/s/b"], Some(3)),
            name(RenameMode::Both, &["/s/a", "/s/b"], Some(3)),
        ]);
        assert_eq!(first, [FileEvent::new("/s/a", FileEventKind::Remove)]);
        assert_eq!(second, [FileEvent::new("/s/b", FileEventKind::Create)]);
    }
}
