//! Build history: every build started from the app, newest first, in `builds.json` in the
//! app's data dir. Written whole and atomically ([`crate::fsutil::write_atomic`]) after each
//! build, capped at [`MAX_BUILDS`] builds and [`MAX_LOG_BYTES`] of log each (the end of the log
//! is kept: that is where a failure is said).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::BuildRequest;
use crate::error::{AppError, Result};

pub const MAX_BUILDS: usize = 50;
pub const MAX_LOG_BYTES: usize = 256 * 1024;

/// How a build ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Stopped from the app (or the app quit) before it ended.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildRecord {
    pub id: String,
    /// What was asked: "build again" sends it as it is.
    pub request: BuildRequest,
    /// Unix milliseconds.
    pub started: u64,
    pub duration_ms: u64,
    pub outcome: Outcome,
    /// `sha256:…` when it succeeded.
    pub image_id: Option<String>,
    /// Docker's message when it failed.
    pub error: Option<String>,
    /// The build's output (its end when longer than [`MAX_LOG_BYTES`]); left out of lists.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log: String,
}

/// Serialises read-modify-write of the file between builds ending at once.
static WRITING: Mutex<()> = Mutex::new(());

pub fn file(data_dir: &Path) -> PathBuf {
    data_dir.join("builds.json")
}

/// The builds recorded, newest first; a missing file is no build, a broken one is said.
pub fn load(path: &Path) -> Result<Vec<BuildRecord>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            AppError::Client(format!("build history {} is broken: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(AppError::Io {
            path: path.display().to_string(),
            err,
        }),
    }
}

/// The end of `log`, at most [`MAX_LOG_BYTES`], cut at a line start when it is cut.
pub fn log_tail(log: &str) -> String {
    if log.len() <= MAX_LOG_BYTES {
        return log.to_string();
    }
    let mut cut = log.len() - MAX_LOG_BYTES;
    while !log.is_char_boundary(cut) {
        cut += 1;
    }
    let rest = &log[cut..];
    let from = rest.find('\n').map_or(0, |i| i + 1);
    format!("[… earlier output not kept]\n{}", &rest[from..])
}

/// Adds `record` first, dropping the oldest past [`MAX_BUILDS`].
pub fn add(path: &Path, mut record: BuildRecord) -> Result<()> {
    let _guard = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    let mut all = match load(path) {
        Ok(all) => all,
        Err(e) => {
            // A broken file is kept aside (not lost) and a new history started, rather than
            // failing every later build.
            let aside = path.with_extension("json.broken");
            tracing::warn!(error = %e, aside = %aside.display(), "starting a new build history");
            std::fs::rename(path, &aside).map_err(crate::fsutil::io_error(path))?;
            Vec::new()
        }
    };
    record.log = log_tail(&record.log);
    all.retain(|r| r.id != record.id);
    all.insert(0, record);
    all.truncate(MAX_BUILDS);
    let body = serde_json::to_vec(&all).map_err(|e| AppError::Client(e.to_string()))?;
    crate::fsutil::write_atomic(path, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: usize, log: &str) -> BuildRecord {
        BuildRecord {
            id: id.to_string(),
            request: BuildRequest::default(),
            started: id as u64,
            duration_ms: 1,
            outcome: Outcome::Succeeded,
            image_id: None,
            error: None,
            log: log.into(),
        }
    }

    #[test]
    fn newest_first_and_capped() {
        let d = tempfile::tempdir().unwrap();
        let p = file(d.path());
        assert!(load(&p).unwrap().is_empty());
        for i in 0..MAX_BUILDS + 3 {
            add(&p, record(i, "log\n")).unwrap();
        }
        let all = load(&p).unwrap();
        assert_eq!(all.len(), MAX_BUILDS);
        assert_eq!(all[0].id, (MAX_BUILDS + 2).to_string());
        assert_eq!(all[0].log, "log\n");
    }

    #[test]
    fn a_long_log_keeps_its_end_from_a_line_start() {
        let line = "x".repeat(99) + "\n";
        let log = line.repeat(MAX_LOG_BYTES / 100 + 10) + "the error\n";
        let kept = log_tail(&log);
        assert!(kept.len() <= MAX_LOG_BYTES + 40);
        assert!(kept.ends_with("the error\n"));
        assert!(
            kept.lines().nth(1).unwrap().len() == 99 || kept.lines().nth(1) == Some("the error")
        );
    }

    #[test]
    fn a_broken_file_is_said_and_replaced_by_the_next_build() {
        let d = tempfile::tempdir().unwrap();
        let p = file(d.path());
        std::fs::write(&p, "{not json").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("broken"));
        add(&p, record(1, "")).unwrap();
        assert_eq!(load(&p).unwrap().len(), 1);
        let aside = std::fs::read_to_string(p.with_extension("json.broken")).unwrap();
        assert_eq!(aside, "{not json");
    }
}
