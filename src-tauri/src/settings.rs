//! The app's own settings, `settings.json` in the app config dir (e.g.
//! `~/.config/dev.berth.app/`). Only what is the app's: the engine socket and the debug shell's
//! image. The VM's CPUs, memory
//! and disk are Berth's, kept in `~/.berth/config.json` (`berth_host::Config`) so `berth start`
//! sees the same values; the Settings view edits both.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{AppError, Result};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AppSettings {
    /// `unix:///path` of the engine socket; empty = automatic (see `engine::socket`).
    pub docker_host: Option<String>,
    /// The image of the terminal's debug shell sidecar; empty = `busybox:latest`.
    pub debug_image: Option<String>,
}

impl AppSettings {
    /// The debug shell's image: the setting, else the default.
    pub fn debug_image(&self) -> String {
        self.debug_image
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .unwrap_or(crate::commands::debug_shell::DEFAULT_DEBUG_IMAGE)
            .to_string()
    }
}

impl AppSettings {
    pub fn file(config_dir: &Path) -> PathBuf {
        config_dir.join("settings.json")
    }

    /// Reads the file; a missing or unreadable one gives the defaults (logged).
    pub fn load(config_dir: &Path) -> Self {
        let path = Self::file(config_dir);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "invalid settings; using defaults");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Writes atomically (temp file, then rename).
    pub fn save(&self, config_dir: &Path) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).map_err(|e| AppError::Client(e.to_string()))?;
        crate::fsutil::write_atomic(&Self::file(config_dir), &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("nested");
        let s = AppSettings {
            docker_host: Some("unix:///x.sock".into()),
            debug_image: Some("registry.test/tools:1".into()),
        };
        s.save(&dir).unwrap();
        assert_eq!(AppSettings::load(&dir), s);
    }

    #[test]
    fn missing_or_broken_file_gives_defaults() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(AppSettings::load(d.path()), AppSettings::default());
        std::fs::write(AppSettings::file(d.path()), "{not json").unwrap();
        assert_eq!(AppSettings::load(d.path()), AppSettings::default());
    }

    #[test]
    fn the_debug_image_defaults_to_busybox() {
        assert_eq!(AppSettings::default().debug_image(), "busybox:latest");
        let blank = AppSettings {
            debug_image: Some("  ".into()),
            ..Default::default()
        };
        assert_eq!(blank.debug_image(), "busybox:latest");
    }
}
