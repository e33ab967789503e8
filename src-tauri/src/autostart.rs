//! Start at login: an entry the desktop session runs when the user logs in, starting the app
//! hidden in the tray (`--hidden`). Linux: an XDG autostart file
//! (`$XDG_CONFIG_HOME/autostart/dev.berth.app.desktop`); macOS: a LaunchAgent
//! (`~/Library/LaunchAgents/dev.berth.app.plist`); Windows: the `HKCU\…\Run` value `Berth`
//! (through `reg.exe`).

use std::path::{Path, PathBuf};

use crate::error::{AppError, Result};

/// The argument the login entry passes: start without showing the window.
pub const HIDDEN_ARG: &str = "--hidden";

/// Where the login entry lives and how to turn it on or off.
pub trait LoginItem {
    fn enabled(&self) -> bool;
    fn set(&self, enabled: bool) -> Result<()>;
    /// Where it is, for the Settings view.
    fn location(&self) -> String;
}

/// A login entry that is one file (XDG autostart, LaunchAgent).
pub struct FileItem {
    pub path: PathBuf,
    pub contents: String,
}

impl LoginItem for FileItem {
    fn enabled(&self) -> bool {
        self.path.is_file()
    }

    fn set(&self, enabled: bool) -> Result<()> {
        let io = |p: &Path| {
            let path = p.display().to_string();
            move |err| AppError::Io { path, err }
        };
        if !enabled {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&self.path)(e)),
                _ => Ok(()),
            };
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::write(&self.path, &self.contents).map_err(io(&self.path))
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

/// The XDG autostart entry for `exe` under `config_home` (`$XDG_CONFIG_HOME`).
pub fn xdg_entry(config_home: &Path, exe: &Path) -> FileItem {
    FileItem {
        path: config_home.join("autostart/dev.berth.app.desktop"),
        contents: format!(
            "[Desktop Entry]\nType=Application\nName=Berth\nComment=Berth's container engine and dashboard\nExec=\"{}\" {HIDDEN_ARG}\nTerminal=false\nX-GNOME-Autostart-enabled=true\n",
            exe.display()
        ),
    }
}

/// The LaunchAgent for `exe` under `home`.
pub fn launch_agent(home: &Path, exe: &Path) -> FileItem {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    FileItem {
        path: home.join("Library/LaunchAgents/dev.berth.app.plist"),
        contents: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\"><dict>\n<key>Label</key><string>dev.berth.app</string>\n<key>ProgramArguments</key><array><string>{}</string><string>{HIDDEN_ARG}</string></array>\n<key>RunAtLoad</key><true/>\n</dict></plist>\n",
            esc(&exe.display().to_string())
        ),
    }
}

/// The Windows `Run` value, set and read with `reg.exe`.
#[cfg(windows)]
pub struct RunKey {
    pub exe: PathBuf,
}

#[cfg(windows)]
const RUN_KEY: &str = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run";

#[cfg(windows)]
impl LoginItem for RunKey {
    fn enabled(&self) -> bool {
        std::process::Command::new("reg")
            .args(["query", RUN_KEY, "/v", "Berth"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn set(&self, enabled: bool) -> Result<()> {
        let value = format!("\"{}\" {HIDDEN_ARG}", self.exe.display());
        let mut cmd = std::process::Command::new("reg");
        if enabled {
            cmd.args(["add", RUN_KEY, "/v", "Berth", "/d", &value, "/f"]);
        } else if self.enabled() {
            cmd.args(["delete", RUN_KEY, "/v", "Berth", "/f"]);
        } else {
            return Ok(());
        }
        let out = cmd.output().map_err(|err| AppError::Io {
            path: "reg".into(),
            err,
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(AppError::Invalid(format!(
                "reg: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    fn location(&self) -> String {
        format!(r"{RUN_KEY}\Berth")
    }
}

fn current_exe() -> Result<PathBuf> {
    std::env::current_exe().map_err(|err| AppError::Io {
        path: "the app's own path".into(),
        err,
    })
}

/// This platform's login entry for the running binary.
#[cfg(not(any(windows, target_os = "macos")))]
pub fn login_item() -> Result<Box<dyn LoginItem + Send>> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))
        .ok_or_else(|| AppError::Invalid("neither XDG_CONFIG_HOME nor HOME is set".into()))?;
    Ok(Box::new(xdg_entry(&config, &current_exe()?)))
}

#[cfg(target_os = "macos")]
pub fn login_item() -> Result<Box<dyn LoginItem + Send>> {
    let home =
        std::env::var_os("HOME").ok_or_else(|| AppError::Invalid("HOME is not set".into()))?;
    Ok(Box::new(launch_agent(Path::new(&home), &current_exe()?)))
}

#[cfg(windows)]
pub fn login_item() -> Result<Box<dyn LoginItem + Send>> {
    Ok(Box::new(RunKey {
        exe: current_exe()?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xdg_entry_starts_the_app_hidden_and_goes_away() {
        let d = tempfile::tempdir().unwrap();
        let item = xdg_entry(d.path(), Path::new("/opt/berth/berth-app"));
        assert!(!item.enabled());
        item.set(false).unwrap();
        item.set(true).unwrap();
        assert!(item.enabled());
        let text =
            std::fs::read_to_string(d.path().join("autostart/dev.berth.app.desktop")).unwrap();
        assert!(
            text.contains("Exec=\"/opt/berth/berth-app\" --hidden\n"),
            "{text}"
        );
        item.set(false).unwrap();
        assert!(!item.enabled());
    }

    #[test]
    fn the_launch_agent_runs_at_load_with_the_escaped_path() {
        let d = tempfile::tempdir().unwrap();
        let item = launch_agent(d.path(), Path::new("/Apps/B&B.app/berth-app"));
        item.set(true).unwrap();
        let text = std::fs::read_to_string(&item.path).unwrap();
        assert!(
            text.contains("<string>/Apps/B&amp;B.app/berth-app</string><string>--hidden</string>"),
            "{text}"
        );
        assert!(text.contains("<key>RunAtLoad</key><true/>"));
    }
}
