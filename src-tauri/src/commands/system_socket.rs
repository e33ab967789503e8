//! Settings › System socket: whether `/var/run/docker.sock` (Berth's config
//! `system_socket_path`) links to this Berth home's socket, and making or removing that link
//! through `berth_host::system_socket` (what `berth start --system-socket` and `berth stop`
//! do). A socket, file or link that is not Berth's is never replaced. The path usually needs
//! root: when the app may not write it, the error gives the command to run. Windows has no
//! link (the supervisor serves the standard pipe, config `system_socket`).

use serde::Serialize;
use tauri::State;

use crate::error::Result;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemSocketView {
    pub path: String,
    /// Berth's socket the link points at.
    pub target: String,
    /// `free`, `ours`, `other`, or `unsupported` (Windows).
    pub state: &'static str,
    /// What is there, for `other`; why not, for `unsupported`.
    pub what: Option<String>,
    /// The shell command for the next step (link when free, remove when ours).
    pub command: Option<String>,
}

fn config(berth: &berth_host::StateDir) -> Result<berth_host::Config> {
    if berth.config_file().exists() {
        Ok(berth_host::Config::load_or_init(berth)?)
    } else {
        Ok(berth_host::Config::default())
    }
}

#[cfg(unix)]
mod imp {
    use berth_host::system_socket::{self, LinkState, Linked, Unlinked};

    use super::*;
    use crate::error::AppError;

    pub(super) fn view(berth: &berth_host::StateDir) -> Result<SystemSocketView> {
        let path = config(berth)?.system_socket_path;
        let (state, what, command) = match system_socket::inspect(berth, &path)? {
            LinkState::Free => (
                "free",
                None,
                Some(system_socket::link_command(berth, &path)),
            ),
            LinkState::Ours => ("ours", None, Some(system_socket::unlink_command(&path))),
            LinkState::Other(what) => ("other", Some(what), None),
        };
        Ok(SystemSocketView {
            path: path.display().to_string(),
            target: berth.docker_socket().display().to_string(),
            state,
            what,
            command,
        })
    }

    /// A permission error as what to run instead.
    fn forbidden(e: berth_host::HostError, command: String) -> AppError {
        match &e {
            berth_host::HostError::Io { source, path }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                AppError::Forbidden(format!(
                    "not permitted to change {} (it needs root); run: {command}",
                    path.display()
                ))
            }
            _ => e.into(),
        }
    }

    pub(super) fn link(berth: &berth_host::StateDir) -> Result<SystemSocketView> {
        let path = config(berth)?.system_socket_path;
        berth.create()?;
        match system_socket::enable(berth, &path)
            .map_err(|e| forbidden(e, system_socket::link_command(berth, &path)))?
        {
            Linked::Created | Linked::AlreadyOurs => {}
            Linked::Occupied(what) => {
                return Err(AppError::Conflict(format!(
                    "{} is {what}; Berth leaves it alone (remove it yourself to let Berth link it)",
                    path.display()
                )))
            }
        }
        view(berth)
    }

    pub(super) fn unlink(berth: &berth_host::StateDir) -> Result<SystemSocketView> {
        let path = config(berth)?.system_socket_path;
        match system_socket::remove(berth, &path)
            .map_err(|e| forbidden(e, system_socket::unlink_command(&path)))?
        {
            Unlinked::Removed(_) | Unlinked::NothingRecorded => {}
            Unlinked::NotOurs(p, what) => {
                return Err(AppError::Conflict(format!(
                    "{} is {what}, not Berth's link; left alone",
                    p.display()
                )))
            }
        }
        view(berth)
    }
}

#[cfg(not(unix))]
mod imp {
    use super::*;
    use crate::error::AppError;

    const WHY: &str = "Windows has no docker.sock link: set `system_socket` in Berth's \
                       config.json and the supervisor serves the standard pipe";

    pub(super) fn view(berth: &berth_host::StateDir) -> Result<SystemSocketView> {
        Ok(SystemSocketView {
            path: config(berth)?.system_socket_path.display().to_string(),
            target: berth.docker_endpoint().url(),
            state: "unsupported",
            what: Some(WHY.into()),
            command: None,
        })
    }

    pub(super) fn link(_berth: &berth_host::StateDir) -> Result<SystemSocketView> {
        Err(AppError::Unavailable(WHY.into()))
    }

    pub(super) fn unlink(berth: &berth_host::StateDir) -> Result<SystemSocketView> {
        link(berth)
    }
}

#[tauri::command]
pub fn system_socket_status(state: State<'_, AppState>) -> Result<SystemSocketView> {
    imp::view(&state.berth)
}

/// Links the path to Berth's socket when it is free.
#[tauri::command]
pub fn system_socket_link(state: State<'_, AppState>) -> Result<SystemSocketView> {
    imp::link(&state.berth)
}

/// Removes the link when it is Berth's.
#[tauri::command]
pub fn system_socket_unlink(state: State<'_, AppState>) -> Result<SystemSocketView> {
    imp::unlink(&state.berth)
}
