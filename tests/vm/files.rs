//! Host file events reach a container as the kernel would give them: a watcher in a container
//! (inotify on a bind-mounted shared folder) sees the host's create, write, rename and delete as
//! IN_CREATE, IN_MODIFY, IN_MOVED_FROM + IN_MOVED_TO (one cookie) and IN_DELETE, with the
//! names, through the real VM and the image's `berth_fsnotify` module, whose device refuses
//! malformed records. The delay from the
//! host's change to the watcher's line is printed (the 100 ms goal is the bench's, not an
//! assertion); the watcher's lines come back through the share, woken by a host inotify watch.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::host::{build_static, Berth};

const IN_MODIFY: u32 = 0x2;
const IN_MOVED_FROM: u32 = 0x40;
const IN_MOVED_TO: u32 = 0x80;
const IN_CREATE: u32 = 0x100;
const IN_DELETE: u32 = 0x200;
const IN_ISDIR: u32 = 0x4000_0000;
/// Rounds of create / write / rename / delete; each gives one delay per kind.
const ROUNDS: usize = 8;
/// Bound on each wait for an event.
const WAIT: Duration = Duration::from_secs(10);

/// A static inotify watcher for the container: watches `argv[1]` and appends one line per event,
/// `<mask hex> <cookie> <name>`, to `argv[2]` (after a first line `watching`).
fn build_watcher(dir: &Path) -> PathBuf {
    build_static(
        dir,
        "watch",
        r#"#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
int main(int c, char **v) {
  int fd = inotify_init();
  if (c < 3 || inotify_add_watch(fd, v[1], IN_ALL_EVENTS) < 0) { perror("watch"); return 1; }
  int out = open(v[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out < 0) { perror("open"); return 1; }
  char line[512];
  write(out, "watching\n", 9);
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf); if (n <= 0) return 1;
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *e = (struct inotify_event *)p;
      int len = snprintf(line, sizeof line, "%08x %u %s\n", e->mask, e->cookie, e->len ? e->name : ".");
      write(out, line, len);
      p += sizeof *e + e->len;
    }
  }
}
"#,
    )
}

/// One watcher line.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    mask: u32,
    cookie: u32,
    name: String,
}

fn parse(line: &str) -> Option<Seen> {
    let mut f = line.splitn(3, ' ');
    Some(Seen {
        mask: u32::from_str_radix(f.next()?, 16).ok()?,
        cookie: f.next()?.parse().ok()?,
        name: f.next()?.to_string(),
    })
}

/// The watcher's log as the host sees it, with a host inotify watch on it: a wait wakes when
/// the guest's write lands, so the delays are not rounded to a poll interval.
struct EventLog {
    path: PathBuf,
    inotify: OwnedFd,
}

impl EventLog {
    fn new(path: PathBuf) -> Self {
        std::fs::write(&path, "").unwrap();
        // SAFETY: plain syscalls; the descriptor is owned from here on.
        let inotify = unsafe {
            let fd = libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK);
            assert!(fd >= 0, "inotify_init1");
            OwnedFd::from_raw_fd(fd)
        };
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid descriptor and NUL-terminated path.
        let wd =
            unsafe { libc::inotify_add_watch(inotify.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
        assert!(wd >= 0, "inotify_add_watch {}", path.display());
        Self { path, inotify }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    fn events(&self) -> Vec<Seen> {
        self.text().lines().filter_map(parse).collect()
    }

    /// Waits up to `timeout` for `found` to pick something out of the events; returns it and
    /// the instant it was seen.
    fn wait<T>(
        &self,
        timeout: Duration,
        found: impl Fn(&[Seen]) -> Option<T>,
    ) -> Option<(T, Instant)> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(t) = found(&self.events()) {
                return Some((t, Instant::now()));
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.block(left);
        }
    }

    /// Blocks until the log is written to or `left` passes, then drains the notifications.
    fn block(&self, left: Duration) {
        let mut p = libc::pollfd {
            fd: self.inotify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        let mut buf = [0u8; 4096];
        // SAFETY: one pollfd of ours; read into a buffer of ours (non-blocking).
        unsafe {
            libc::poll(&mut p, 1, ms);
            while libc::read(p.fd, buf.as_mut_ptr().cast(), buf.len()) > 0 {}
        }
    }
}

/// Delays of one kind of event, for the figure line.
#[derive(Default)]
struct Delays(Vec<Duration>);

impl Delays {
    fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    fn summary(&mut self) -> String {
        self.0.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "min {:.0} ms, median {:.0} ms, max {:.0} ms over {}",
            ms(self.0[0]),
            ms(self.0[self.0.len() / 2]),
            ms(self.0[self.0.len() - 1]),
            self.0.len()
        )
    }
}

/// The first event after `from` with `mask` (exactly) on `name`.
fn after(from: usize, mask: u32, name: &str) -> impl Fn(&[Seen]) -> Option<(usize, Seen)> + '_ {
    move |ev| {
        ev.iter()
            .enumerate()
            .skip(from)
            .find(|(_, e)| e.mask == mask && e.name == name)
            .map(|(i, e)| (i, e.clone()))
    }
}

#[test]
fn host_file_events_reach_a_container_as_inotify_events() {
    let b = Berth::pulling_from_test_registry();
    b.berth_ok(&["start", "--timeout", "240"]);
    b.docker_ok(&["pull", "-q", "busybox"]);

    let share = b.share();
    let watched = share.join("w");
    build_watcher(share);
    let log = EventLog::new(share.join("events.log"));
    let vol = format!("{}:/data", share.display());
    b.docker_ok(&[
        "run",
        "-d",
        "--name",
        "watcher",
        "-v",
        &vol,
        "busybox",
        "/data/watch",
        "/data/w",
        "/data/events.log",
    ]);
    assert!(
        log.wait(WAIT, |_| log.text().starts_with("watching").then_some(()))
            .is_some(),
        "the watcher did not start: {}",
        b.read_log("logs/supervisor.log")
    );

    let (mut create, mut modify) = (Delays::default(), Delays::default());
    let (mut rename, mut delete) = (Delays::default(), Delays::default());
    let seen = |from: usize, mask: u32, name: &str, what: &str| {
        log.wait(WAIT, after(from, mask, name)).unwrap_or_else(|| {
            panic!(
                "no {what} ({mask:#x}) for {name} in the container; it saw:\n{}",
                log.text()
            )
        })
    };
    for round in 0..ROUNDS {
        let (a, z) = (format!("new-{round}.txt"), format!("renamed-{round}.txt"));
        let start = log.events().len();

        let t = Instant::now();
        std::fs::write(watched.join(&a), "1").unwrap();
        let ((i, _), at) = seen(start, IN_CREATE, &a, "IN_CREATE");
        create.push(at - t);
        // The create's own write; the next IN_MODIFY is the append's.
        let ((i, _), _) = seen(i + 1, IN_MODIFY, &a, "IN_MODIFY of the create's write");
        let from = i + 1;
        let t = Instant::now();
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(watched.join(&a))
                .unwrap();
            f.write_all(b"2").unwrap();
        }
        let (_, at) = seen(from, IN_MODIFY, &a, "IN_MODIFY");
        modify.push(at - t);

        let from = log.events().len();
        let t = Instant::now();
        std::fs::rename(watched.join(&a), watched.join(&z)).unwrap();
        let ((_, old), _) = seen(from, IN_MOVED_FROM, &a, "IN_MOVED_FROM");
        let ((_, new), at) = seen(from, IN_MOVED_TO, &z, "IN_MOVED_TO");
        rename.push(at - t);
        assert!(
            old.cookie != 0 && old.cookie == new.cookie,
            "a rename's two events must share a cookie: {old:?} {new:?}"
        );

        let from = log.events().len();
        let t = Instant::now();
        std::fs::remove_file(watched.join(&z)).unwrap();
        let (_, at) = seen(from, IN_DELETE, &z, "IN_DELETE");
        delete.push(at - t);
    }

    // Folders say so (IN_ISDIR).
    let from = log.events().len();
    std::fs::create_dir(watched.join("sub")).unwrap();
    seen(from, IN_CREATE | IN_ISDIR, "sub", "IN_CREATE|IN_ISDIR");
    std::fs::remove_dir(watched.join("sub")).unwrap();
    seen(from, IN_DELETE | IN_ISDIR, "sub", "IN_DELETE|IN_ISDIR");

    eprintln!(
        "figure: host create -> IN_CREATE in a container: {}",
        create.summary()
    );
    eprintln!(
        "figure: host append -> IN_MODIFY in a container: {}",
        modify.summary()
    );
    eprintln!(
        "figure: host rename -> IN_MOVED_TO in a container: {}",
        rename.summary()
    );
    eprintln!(
        "figure: host delete -> IN_DELETE in a container: {}",
        delete.summary()
    );
    mounts_on_a_changed_name_stay(&b, &log, &seen);
    b.docker_ok(&["rm", "-f", "watcher"]);

    device_refuses_malformed_records(&b);
    b.berth_ok(&["stop"]);
}

/// A container's bind mount onto a name in the share (`-v share/other.txt:/data/w/m.txt`)
/// survives the host writing that name: the replay does not drop a dentry that something is
/// mounted on (`d_invalidate` would detach the mount). (When the host removes the name, the
/// kernel's own virtiofs revalidation drops it, mount and all, as on any network filesystem.)
fn mounts_on_a_changed_name_stay<F>(b: &Berth, log: &EventLog, seen: &F)
where
    F: Fn(usize, u32, &str, &str) -> ((usize, Seen), Instant),
{
    let share = b.share();
    std::fs::write(share.join("other.txt"), "other").unwrap();
    std::fs::write(share.join("w/m.txt"), "under").unwrap();
    let vol = format!("{}:/data", share.display());
    let file = format!("{}/other.txt:/data/w/m.txt", share.display());
    b.docker_ok(&[
        "run", "-d", "--name", "mounter", "-v", &vol, "-v", &file, "busybox", "sleep", "600",
    ]);
    let shown = || b.docker_ok(&["exec", "mounter", "cat", "/data/w/m.txt"]);
    assert_eq!(shown(), "other");
    let from = log.events().len();
    std::fs::write(share.join("w/m.txt"), "under, written").unwrap();
    seen(from, IN_MODIFY, "m.txt", "IN_MODIFY under a mount");
    assert_eq!(
        shown(),
        "other",
        "the bind mount was detached by a host write"
    );
    b.docker_ok(&["rm", "-f", "mounter"]);
    std::fs::remove_file(share.join("w/m.txt")).unwrap();
}

/// A `printf` format of one `berth_fsnotify` record (ABI: four native-endian u32, x86-64 here,
/// then the bytes; `dd` writes it in one write); `path_len` may lie.
fn record(version: u32, kind: u32, path_len: u32, bytes: &str) -> String {
    let mut f = String::new();
    for n in [version, kind, path_len, 0] {
        for b in n.to_le_bytes() {
            f.push_str(&format!("\\{b:03o}"));
        }
    }
    f + bytes
}

/// The module's device, from a privileged container (which gets the guest's device nodes):
/// a well-formed record is taken, malformed ones fail with EINVAL, a folder that does not
/// resolve with ENOENT, and a user other than root cannot open it.
fn device_refuses_malformed_records(b: &Berth) {
    let cases = [
        ("valid", record(1, 1, 6, "/tmp/x"), "ok"),
        ("version 2", record(2, 1, 6, "/tmp/x"), "Invalid argument"),
        ("kind 9", record(1, 9, 6, "/tmp/x"), "Invalid argument"),
        ("short", "garbage".to_string(), "Invalid argument"),
        ("length", record(1, 1, 10, "/tmp/x"), "Invalid argument"),
        ("relative", record(1, 1, 1, "x"), "Invalid argument"),
        ("dotdot", record(1, 1, 7, "/tmp/.."), "Invalid argument"),
        ("move alone", record(1, 4, 6, "/tmp/x"), "Invalid argument"),
        (
            "no folder",
            record(1, 1, 7, "/nope/x"),
            "No such file or directory",
        ),
    ];
    let script: String = cases
        .iter()
        .map(|(name, rec, _)| {
            format!(
                "if printf '{rec}' | dd of=/dev/berth-fsnotify bs=4096 conv=notrunc 2>/tmp/e; \
                 then echo '{name}: ok'; else echo \"{name}: $(head -1 /tmp/e)\"; fi\n"
            )
        })
        .collect();
    let out = b.docker_ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    for (name, _, want) in &cases {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no result for {name}:\n{out}"));
        assert!(line.ends_with(want), "{name}: want {want:?}, got {line:?}");
    }
    let o = b.docker(&[
        "run",
        "--rm",
        "--privileged",
        "-u",
        "1000",
        "busybox",
        "sh",
        "-c",
        "printf x >/dev/berth-fsnotify",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
        "a non-root user wrote to the device: {o:?}"
    );
}
