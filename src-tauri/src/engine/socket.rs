//! Which Docker socket the app talks to. First match wins:
//!
//! 1. `BERTH_DOCKER_HOST` (`unix:///path`), for tests and power users;
//! 2. the socket saved in the app's settings;
//! 3. `DOCKER_HOST`, when it is a unix socket (tcp/ssh hosts are skipped: the app only speaks
//!    unix sockets);
//! 4. Berth's forwarded socket, `~/.berth/run/docker.sock` (`berth_host::StateDir`).
//!
//! Pure: the caller passes the environment in, so the order is unit-tested.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Where the chosen socket came from (shown in Settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketSource {
    BerthDockerHost,
    Settings,
    DockerHost,
    BerthVm,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocketChoice {
    pub path: PathBuf,
    pub source: SocketSource,
}

/// The inputs of the resolution, as read from the environment and the settings file.
#[derive(Debug, Default, Clone)]
pub struct SocketInputs<'a> {
    pub berth_docker_host: Option<&'a str>,
    pub saved: Option<&'a str>,
    pub docker_host: Option<&'a str>,
}

/// The socket path of a `unix://` URL or a bare absolute path; `None` for anything else
/// (`tcp://`, `ssh://`, relative paths, empty strings).
pub fn unix_path(host: &str) -> Option<PathBuf> {
    let host = host.trim();
    let path = host.strip_prefix("unix://").unwrap_or(host);
    Path::new(path)
        .is_absolute()
        .then(|| PathBuf::from(path))
        .filter(|_| !path.contains("://"))
}

/// Picks the socket (see the module docs); `vm_socket` is Berth's forwarded socket.
pub fn resolve(inputs: &SocketInputs<'_>, vm_socket: &Path) -> SocketChoice {
    let candidates = [
        (inputs.berth_docker_host, SocketSource::BerthDockerHost),
        (inputs.saved, SocketSource::Settings),
        (inputs.docker_host, SocketSource::DockerHost),
    ];
    for (value, source) in candidates {
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        match unix_path(value) {
            Some(path) => return SocketChoice { path, source },
            None => tracing::warn!(?source, value, "not a unix socket; skipped"),
        }
    }
    SocketChoice {
        path: vm_socket.to_path_buf(),
        source: SocketSource::BerthVm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &str = "/home/u/.berth/run/docker.sock";

    fn pick(b: Option<&str>, s: Option<&str>, d: Option<&str>) -> SocketChoice {
        resolve(
            &SocketInputs {
                berth_docker_host: b,
                saved: s,
                docker_host: d,
            },
            Path::new(VM),
        )
    }

    #[test]
    fn berth_docker_host_wins_over_everything() {
        let c = pick(
            Some("unix:///t/e.sock"),
            Some("/saved.sock"),
            Some("unix:///d.sock"),
        );
        assert_eq!(c.path, PathBuf::from("/t/e.sock"));
        assert_eq!(c.source, SocketSource::BerthDockerHost);
    }

    #[test]
    fn saved_setting_comes_before_docker_host() {
        let c = pick(None, Some("unix:///saved.sock"), Some("unix:///d.sock"));
        assert_eq!(c.path, PathBuf::from("/saved.sock"));
        assert_eq!(c.source, SocketSource::Settings);
    }

    #[test]
    fn docker_host_used_only_when_unix() {
        let c = pick(None, None, Some("unix:///var/run/docker.sock"));
        assert_eq!(c.source, SocketSource::DockerHost);
        assert_eq!(c.path, PathBuf::from("/var/run/docker.sock"));
        let c = pick(None, None, Some("tcp://10.0.0.1:2375"));
        assert_eq!(c.source, SocketSource::BerthVm);
        assert_eq!(c.path, PathBuf::from(VM));
    }

    #[test]
    fn blank_and_relative_values_fall_through() {
        let c = pick(Some("  "), Some("relative.sock"), None);
        assert_eq!(c.source, SocketSource::BerthVm);
    }

    #[test]
    fn unix_path_accepts_urls_and_absolute_paths_only() {
        assert_eq!(unix_path("unix:///a/b"), Some(PathBuf::from("/a/b")));
        assert_eq!(unix_path("/a/b"), Some(PathBuf::from("/a/b")));
        assert_eq!(unix_path("ssh://host"), None);
        assert_eq!(unix_path("npipe:////./pipe/x"), None);
        assert_eq!(unix_path(""), None);
    }
}
