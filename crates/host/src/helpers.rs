//! Helper daemons: vhost-device-vsock (hybrid vsock) and one virtiofsd per share.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{HostError, Result};
use crate::process::Child;
use crate::StateDir;

/// Guest CID given to the VM.
pub const GUEST_CID: u32 = 3;

fn tool(tools_dir: &Path, name: &str) -> Result<PathBuf> {
    let p = tools_dir.join("bin").join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(HostError::MissingTool(name.into()))
    }
}

/// Waits (bounded) for a daemon's socket to appear.
async fn wait_socket(path: &Path, child: &mut Child, what: &str) -> Result<()> {
    for _ in 0..100 {
        if path.exists() {
            return Ok(());
        }
        if child.try_exited() {
            return Err(HostError::Command {
                what: what.into(),
                detail: "exited at start; see its log".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(HostError::Timeout {
        what: format!("{what} socket {}", path.display()),
        secs: 5,
    })
}

/// Starts vhost-device-vsock; it outlives VM reboots, so the supervisor starts it once.
pub async fn start_vsock_daemon(state: &StateDir, tools_dir: &Path) -> Result<Child> {
    let bin = tool(tools_dir, "vhost-device-vsock")?;
    let vhost = state.vhost_vsock_socket();
    let uds = state.vsock_socket();
    let _ = std::fs::remove_file(&vhost);
    let _ = std::fs::remove_file(&uds);
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("--vm").arg(format!(
        "guest-cid={GUEST_CID},socket={},uds-path={}",
        vhost.display(),
        uds.display()
    ));
    let mut child = Child::spawn(
        "vhost-device-vsock",
        cmd,
        &state.log_file("vhost-device-vsock"),
        &state.pid_file("vhost-device-vsock"),
    )?;
    wait_socket(&vhost, &mut child, "vhost-device-vsock").await?;
    Ok(child)
}

/// Starts virtiofsd for share `i` with its `--cache` mode; it exits when the VM disconnects,
/// so one per boot.
pub async fn start_virtiofsd(
    state: &StateDir,
    tools_dir: &Path,
    i: usize,
    dir: &Path,
    cache: &str,
) -> Result<Child> {
    let bin = tool(tools_dir, "virtiofsd")?;
    let sock = state.virtiofs_socket(i);
    let _ = std::fs::remove_file(&sock);
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg(format!("--socket-path={}", sock.display()))
        .arg(format!("--shared-dir={}", dir.display()))
        .arg(format!("--cache={cache}"))
        .arg("--log-level=warn");
    let name = format!("virtiofsd-{i}");
    let mut child = Child::spawn(&name, cmd, &state.log_file(&name), &state.pid_file(&name))?;
    wait_socket(&sock, &mut child, &name).await?;
    Ok(child)
}
