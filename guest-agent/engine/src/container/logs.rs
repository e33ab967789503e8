//! `GET /containers/{id}/logs`: the json-file log read back, filtered and framed, with
//! follow.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Svc;
use crate::shim::jsonlog::{self, Entry};
use crate::stream::frame;
use crate::{EngineError, Result};

/// Query of the logs endpoint.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix nanoseconds; entries before are skipped.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub timestamps: bool,
    /// `None` = all.
    pub tail: Option<usize>,
}

fn entry_nanos(e: &Entry) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&e.time)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

/// Renders one entry as the client expects it.
pub fn render(e: &Entry, tty: bool, timestamps: bool) -> Vec<u8> {
    let mut text = String::new();
    if timestamps {
        text.push_str(&e.time);
        text.push(' ');
    }
    text.push_str(&e.log);
    if tty {
        text.into_bytes()
    } else {
        frame(if e.stream == "stderr" { 2 } else { 1 }, text.as_bytes())
    }
}

fn wanted(e: &Entry, o: &LogOptions) -> bool {
    let stream_ok = (e.stream == "stdout" && o.stdout) || (e.stream == "stderr" && o.stderr);
    if !stream_ok {
        return false;
    }
    let t = entry_nanos(e);
    o.since.is_none_or(|s| t >= s) && o.until.is_none_or(|u| t <= u)
}

impl Svc {
    /// Streams the log: history first, then (with `follow`) new entries until the container
    /// stops. Returns whether the container has a TTY and the byte stream.
    pub async fn logs(
        self: &Arc<Self>,
        key: &str,
        o: LogOptions,
    ) -> Result<(bool, mpsc::Receiver<Bytes>)> {
        let c = self.get(key)?;
        let s = c.snapshot();
        if s.host.log_config.typ == "none" {
            return Err(EngineError::invalid(
                "configured logging driver does not support reading",
            ));
        }
        let tty = s.record.config.tty;
        let path = self.paths(&c.id).log(&c.id);
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let mut status = c.subscribe();
        tokio::spawn(async move {
            let history = {
                let (files, o, tx) = (jsonlog::files(&path), o.clone(), tx.clone());
                tokio::task::spawn_blocking(move || send_history(&files, &o, tty, &tx))
            };
            if !history.await.unwrap_or(false) {
                return;
            }
            let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if !o.follow {
                return;
            }
            loop {
                let running = status.borrow().running;
                let (new, next) = read_from(&path, offset);
                offset = next;
                for e in new.iter().filter(|e| wanted(e, &o)) {
                    if tx
                        .send(Bytes::from(render(e, tty, o.timestamps)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if !running && !status.borrow().running {
                    // One more pass after the exit so the last lines are not missed.
                    let (new, _) = read_from(&path, offset);
                    for e in new.iter().filter(|e| wanted(e, &o)) {
                        let _ = tx.send(Bytes::from(render(e, tty, o.timestamps))).await;
                    }
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = status.changed() => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok((tty, rx))
    }
}

/// Sends the entries of `files` (oldest first) that `o` wants, rendered, as they are read: a
/// log is never held whole, and with `tail` only its last n entries are (blocking). Returns
/// false when the client went away.
fn send_history(files: &[PathBuf], o: &LogOptions, tty: bool, tx: &mpsc::Sender<Bytes>) -> bool {
    let mut entries = files
        .iter()
        .filter_map(|f| jsonlog::entries(f).ok())
        .flatten()
        .filter(|e| wanted(e, o));
    let send = |e: &Entry| {
        tx.blocking_send(Bytes::from(render(e, tty, o.timestamps)))
            .is_ok()
    };
    match o.tail {
        None => entries.all(|e| send(&e)),
        Some(n) => {
            let mut last = std::collections::VecDeque::with_capacity(n.min(4096));
            for e in entries.take_while(|_| n > 0) {
                if last.len() == n {
                    last.pop_front();
                }
                last.push_back(e);
            }
            last.iter().all(send)
        }
    }
}

/// Complete entries of `path` after byte `offset`; restarts at 0 when the file was rotated.
fn read_from(path: &PathBuf, offset: u64) -> (Vec<Entry>, u64) {
    let Ok(mut f) = std::fs::File::open(path) else {
        return (vec![], offset);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = if len < offset { 0 } else { offset };
    if f.seek(SeekFrom::Start(start)).is_err() {
        return (vec![], offset);
    }
    let mut out = vec![];
    let mut pos = start;
    let mut r = BufReader::new(f);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !line.ends_with('\n') {
                    break;
                }
                pos += n as u64;
                if let Ok(e) = serde_json::from_str::<Entry>(line.trim_end()) {
                    out.push(e);
                }
            }
        }
    }
    (out, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(stream: &str, log: &str) -> Entry {
        Entry {
            log: log.into(),
            stream: stream.into(),
            time: "2024-01-01T00:00:00.5Z".into(),
        }
    }

    #[test]
    fn render_frames_and_timestamps() {
        assert_eq!(
            render(&e("stderr", "x\n"), false, false),
            [2, 0, 0, 0, 0, 0, 0, 2, b'x', b'\n']
        );
        assert_eq!(
            render(&e("stdout", "x\n"), true, true),
            b"2024-01-01T00:00:00.5Z x\n".to_vec()
        );
    }

    #[test]
    fn filters_by_stream_and_time() {
        let o = LogOptions {
            stdout: true,
            since: Some(1_704_067_200_000_000_000),
            ..Default::default()
        };
        assert!(wanted(&e("stdout", "a"), &o));
        assert!(!wanted(&e("stderr", "a"), &o));
        let o2 = LogOptions {
            stdout: true,
            until: Some(1),
            ..Default::default()
        };
        assert!(!wanted(&e("stdout", "a"), &o2));
    }
}
