//! The data disk: a qcow2 image made by `qemu-img` on first start; the guest formats it.

use std::path::Path;

use crate::error::{HostError, Result};

/// Creates `path` as an empty qcow2 of `gib` GiB unless it exists. Returns whether it was created.
pub async fn ensure_data_disk(path: &Path, gib: u32) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let tmp = path.with_extension("qcow2.tmp");
    let out = tokio::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&tmp)
        .arg(format!("{gib}G"))
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
            what: "qemu-img create".into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    std::fs::rename(&tmp, path).map_err(HostError::io(path))?;
    tracing::info!(path = %path.display(), gib, "data disk created");
    Ok(true)
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
    }

    fn which(p: &str) -> Option<std::path::PathBuf> {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(p))
                .find(|f| f.exists())
        })
    }
}
