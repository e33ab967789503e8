//! Mounting the shared folders in the guest once its agent answers: over virtiofs (a device
//! per share: virtiofsd's on Linux, Virtualization.framework's own on macOS), or over 9P
//! streams the host serves itself ([`crate::ninep`]: Windows, or any host with
//! `"share_transport": "9p"` in `config.json`), share n on channel n of SHARE_PORT.

use std::path::{Path, PathBuf};

use berth_agent_proto::{Request, Share, ShareTransport};
use berth_vsock::Connector;

use crate::control::ControlClient;
use crate::vm::Shares;
use crate::Config;

pub use berth_agent_proto::host_path::{windows_guest_path, WINDOWS_DRIVES};

/// How shares travel on this boot: the configured transport, else the back-end's own.
pub fn effective(config: &Config, backend: Shares) -> Shares {
    match config.share_transport {
        Some(ShareTransport::NineP) => Shares::NineP,
        Some(ShareTransport::Virtiofs) | None => backend,
    }
}

/// The tag of share `i` (virtiofs's device tag, or the 9P stream's name).
pub fn tag(i: usize) -> String {
    format!("share{i}")
}

/// A host folder's path in the guest: the same on unix hosts; a Windows path under
/// [`WINDOWS_DRIVES`] by its drive letter.
pub fn guest_path(dir: &Path) -> String {
    let s = dir.to_string_lossy();
    if cfg!(windows) {
        windows_guest_path(&s).unwrap_or_else(|| s.into_owned())
    } else {
        s.into_owned()
    }
}

/// Mounts every configured share; returns the folders that mounted. 9P shares get their
/// connection (and the server thread behind it) first, which ends when the VM goes away.
pub async fn mount_all(
    config: &Config,
    kind: Shares,
    control: &ControlClient,
    guest: &dyn Connector,
) -> Vec<PathBuf> {
    let mut mounted = Vec::new();
    if kind == Shares::Unsupported {
        return mounted;
    }
    for (i, dir) in config.shares.iter().enumerate() {
        let transport = if kind == Shares::NineP {
            let channel = u32::try_from(i).unwrap_or(u32::MAX);
            let served =
                crate::ninep::stream::serve_share(guest, channel, &tag(i), dir.clone()).await;
            if let Err(e) = served {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot open the share's 9p stream");
                continue;
            }
            ShareTransport::NineP
        } else {
            ShareTransport::Virtiofs
        };
        let share = Share {
            tag: tag(i),
            guest_path: guest_path(dir),
            read_only: false,
            transport,
        };
        match control.request(Request::Mount(share)).await {
            Ok(_) => mounted.push(dir.clone()),
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "share not mounted"),
        }
    }
    mounted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_transport_wins_over_the_back_end() {
        let mut c = Config::default();
        assert_eq!(effective(&c, Shares::Virtiofsd), Shares::Virtiofsd);
        c.share_transport = Some(ShareTransport::NineP);
        assert_eq!(effective(&c, Shares::Virtiofsd), Shares::NineP);
        assert_eq!(effective(&c, Shares::Builtin), Shares::NineP);
    }
}
