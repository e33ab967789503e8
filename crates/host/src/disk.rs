//! The data disk: a qcow2 image made by `qemu-img` on first start; the guest formats it.
//! It shrinks two ways: online, the guest trims its free blocks and QEMU (`discard=unmap`)
//! punches them out of the file; offline, [`compact_offline`] rewrites it without its unused
//! clusters (`berth disk compact` with the VM stopped). Back-ends that cannot read qcow2 use
//! the raw image of [`raw`] instead.

use std::path::Path;

pub mod raw;

use crate::error::{HostError, Result};

/// Bytes the file takes on the host's disk (allocated blocks, not its apparent size).
pub fn allocated_bytes(path: &Path) -> Result<u64> {
    let m = std::fs::metadata(path).map_err(HostError::io(path))?;
    #[cfg(unix)]
    let bytes = std::os::unix::fs::MetadataExt::blocks(&m) * 512;
    // Windows: the apparent size (an upper bound; NTFS files made by qemu-img are not sparse).
    #[cfg(windows)]
    let bytes = m.len();
    Ok(bytes)
}

/// Asks the running guest to trim its data disk now; returns the bytes it discarded (QEMU has
/// punched them out of the qcow2 by the time the reply comes).
pub async fn trim_online(state: &crate::StateDir) -> Result<u64> {
    use berth_agent_proto::{Reply, Request};
    crate::idle::wake(state).await;
    let connector = crate::control::side_connector(state)?;
    let reply = crate::control::one_request(
        connector.as_ref(),
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

/// The qcow2's size as the guest sees it and what it takes on the host (`qemu-img info`,
/// which reads it even while QEMU holds it: `-U`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImageSize {
    pub virtual_bytes: u64,
    pub allocated_bytes: u64,
}

/// Reads `path`'s [`ImageSize`].
pub async fn image_size(path: &Path) -> Result<ImageSize> {
    let out = qemu_img(
        "info",
        &["-U".as_ref(), "--output=json".as_ref(), path.as_os_str()],
    )
    .await?;
    parse_image_info(&out).ok_or_else(|| HostError::Command {
        what: "qemu-img info".into(),
        detail: format!("unexpected output: {}", out.trim()),
    })
}

fn parse_image_info(json: &str) -> Option<ImageSize> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(ImageSize {
        virtual_bytes: v.get("virtual-size")?.as_u64()?,
        allocated_bytes: v.get("actual-size")?.as_u64()?,
    })
}

/// Runs `qemu-img <verb> <args>` and returns its standard output; a failure carries its
/// stderr, named `qemu-img <verb>`.
async fn qemu_img(verb: &str, args: &[&std::ffi::OsStr]) -> Result<String> {
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
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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
        let size = image_size(&p).await.unwrap();
        assert_eq!(size.virtual_bytes, 1 << 30);
        assert!(size.allocated_bytes > 0 && size.allocated_bytes < size.virtual_bytes);
        let err = image_size(&d.path().join("none.qcow2")).await.unwrap_err();
        assert!(err.to_string().contains("qemu-img info"), "{err}");
    }

    #[test]
    fn image_info_is_parsed() {
        let info = r#"{"virtual-size": 17179869184, "filename": "d.qcow2", "format": "qcow2",
            "actual-size": 10682368, "dirty-flag": false}"#;
        assert_eq!(
            parse_image_info(info),
            Some(ImageSize {
                virtual_bytes: 17179869184,
                allocated_bytes: 10682368
            })
        );
        assert_eq!(parse_image_info("{}"), None);
    }

    #[cfg(not(windows))]
    fn which(p: &str) -> Option<std::path::PathBuf> {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(p))
                .find(|f| f.exists())
        })
    }
}
