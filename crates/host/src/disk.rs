//! The data disk: a qcow2 image made by `qemu-img` on first start; the guest formats it.
//! It shrinks two ways: online, the guest trims its free blocks and QEMU (`discard=unmap`)
//! punches them out of the file; offline, [`compact_offline`] rewrites it without its unused
//! clusters (`berth disk compact` with the VM stopped).

use std::path::Path;

use crate::error::{HostError, Result};

/// Bytes the file takes on the host's disk (allocated blocks, not its apparent size).
pub fn allocated_bytes(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).map_err(HostError::io(path))?;
    Ok(m.blocks() * 512)
}

/// Asks the running guest to trim its data disk now; returns the bytes it discarded (QEMU has
/// punched them out of the qcow2 by the time the reply comes).
pub async fn trim_online(state: &crate::StateDir) -> Result<u64> {
    use berth_agent_proto::{Reply, Request};
    let connector = berth_vsock::HybridConnector::new(state.vsock_socket());
    let reply = crate::control::one_request(
        &connector,
        Request::Trim,
        std::time::Duration::from_secs(300),
    )
    .await?;
    match reply {
        Reply::Trimmed { bytes } => Ok(bytes),
        other => Err(HostError::Control(format!(
            "unexpected reply to trim: {other:?}"
        ))),
    }
}

/// Rewrites the qcow2 at `path` with only its used clusters (`qemu-img convert`), then
/// replaces it. The VM must be stopped: QEMU's lock on the image makes this fail otherwise.
pub async fn compact_offline(path: &Path) -> Result<()> {
    let tmp = path.with_extension("qcow2.compact");
    let converted = qemu_img(
        "convert",
        &[
            "-q".as_ref(),
            "-O".as_ref(),
            "qcow2".as_ref(),
            path.as_os_str(),
            tmp.as_os_str(),
        ],
    )
    .await;
    if let Err(e) = converted {
        // The partial copy is useless; the original is untouched.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(HostError::io(path))
}

/// Creates `path` as an empty qcow2 of `gib` GiB unless it exists. Returns whether it was created.
pub async fn ensure_data_disk(path: &Path, gib: u32) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let tmp = path.with_extension("qcow2.tmp");
    let size = format!("{gib}G");
    qemu_img(
        "create",
        &[
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            tmp.as_os_str(),
            size.as_ref(),
        ],
    )
    .await?;
    std::fs::rename(&tmp, path).map_err(HostError::io(path))?;
    tracing::info!(path = %path.display(), gib, "data disk created");
    Ok(true)
}

/// Runs `qemu-img <verb> <args>`; a failure carries its stderr, named `qemu-img <verb>`.
async fn qemu_img(verb: &str, args: &[&std::ffi::OsStr]) -> Result<()> {
    let out = tokio::process::Command::new("qemu-img")
        .arg(verb)
        .args(args)
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HostError::MissingTool("qemu-img".into()),
            _ => HostError::Spawn {
                program: "qemu-img".into(),
                source: e,
            },
        })?;
    if !out.status.success() {
        return Err(HostError::Command {
            what: format!("qemu-img {verb}"),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Needs qemu-img, which the Windows checks under wine do not have.
    #[cfg(not(windows))]
    #[tokio::test]
    async fn disk_is_created_once() {
        if which("qemu-img").is_none() {
            panic!("qemu-img missing: run scripts/install-vm-tools.sh");
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("data.qcow2");
        assert!(ensure_data_disk(&p, 1).await.unwrap());
        let head = std::fs::read(&p).unwrap();
        assert_eq!(&head[..4], b"QFI\xfb");
        assert!(!ensure_data_disk(&p, 1).await.unwrap());
        compact_offline(&p).await.unwrap();
        assert_eq!(&std::fs::read(&p).unwrap()[..4], b"QFI\xfb");
        assert!(allocated_bytes(&p).unwrap() > 0);
    }

    fn which(p: &str) -> Option<std::path::PathBuf> {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(p))
                .find(|f| f.exists())
        })
    }
}
