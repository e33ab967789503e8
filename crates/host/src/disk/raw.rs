//! The data disk as a raw sparse image, for back-ends that cannot read qcow2 (macOS
//! Virtualization.framework). It sits beside the qcow2 as `disk/data.img`: made empty and
//! sparse on first start (no tool needed), or converted once from an existing `data.qcow2`
//! (a state dir carried over from Linux) in-process with qcow2-rs, writing only the clusters
//! that hold data so the result stays sparse. The converted qcow2 is kept as
//! `data.qcow2.converted` (the user may delete it); from then on the raw image is the disk.
//!
//! What to do ([`action`]) and where ([`raw_path`]) are plain code, tested everywhere; the
//! conversion needs qcow2-rs, which the crate has on macOS (and for tests on every unix).

use std::path::{Path, PathBuf};

use crate::error::{HostError, Result};

/// The raw image that stands for the qcow2 data disk at `qcow2`.
pub fn raw_path(qcow2: &Path) -> PathBuf {
    qcow2.with_extension("img")
}

/// Where a qcow2 goes once its data lives in the raw image.
pub fn converted_path(qcow2: &Path) -> PathBuf {
    qcow2.with_extension("qcow2.converted")
}

/// What the first start has to do for the raw data disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The raw image exists: use it (a qcow2 beside it is ignored).
    Use,
    /// Convert this qcow2 into the raw image.
    Convert { from: PathBuf },
    /// Make an empty sparse image of this many bytes; the guest formats it.
    Create { bytes: u64 },
}

/// Decides from what exists on disk.
pub fn action(qcow2: &Path, gib: u32) -> Action {
    if raw_path(qcow2).exists() {
        Action::Use
    } else if qcow2.exists() {
        Action::Convert {
            from: qcow2.to_path_buf(),
        }
    } else {
        Action::Create {
            bytes: u64::from(gib) << 30,
        }
    }
}

/// Makes sure the raw data disk for `qcow2` exists and returns its path.
pub async fn ensure(qcow2: &Path, gib: u32) -> Result<PathBuf> {
    let raw = raw_path(qcow2);
    match action(qcow2, gib) {
        Action::Use => {}
        Action::Create { bytes } => {
            create_sparse(&raw, bytes)?;
            tracing::info!(path = %raw.display(), gib, "raw data disk created");
        }
        Action::Convert { from } => {
            let stats = convert(&from, &raw).await?;
            let kept = converted_path(&from);
            std::fs::rename(&from, &kept).map_err(HostError::io(&from))?;
            tracing::info!(
                from = %from.display(),
                to = %raw.display(),
                data_mib = stats.data_bytes >> 20,
                kept = %kept.display(),
                "qcow2 data disk converted to a raw image (the qcow2 may be deleted)"
            );
        }
    }
    Ok(raw)
}

/// Creates `path` as a sparse file of `bytes` (through a temporary name, so a crash leaves no
/// half-made disk behind).
pub fn create_sparse(path: &Path, bytes: u64) -> Result<()> {
    let tmp = path.with_extension("img.tmp");
    let f = std::fs::File::create(&tmp).map_err(HostError::io(&tmp))?;
    f.set_len(bytes).map_err(HostError::io(&tmp))?;
    f.sync_all().map_err(HostError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(HostError::io(path))
}

/// What a conversion wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Converted {
    /// The disk's size as the guest sees it.
    pub virtual_bytes: u64,
    /// Bytes written (clusters holding data); the rest is holes.
    pub data_bytes: u64,
}

/// Converts the qcow2 at `src` into a sparse raw image at `dst`.
#[cfg(any(target_os = "macos", all(test, unix)))]
pub async fn convert(src: &Path, dst: &Path) -> Result<Converted> {
    // qcow2-rs opens the file with `unwrap`: check it opens first, so a missing or unreadable
    // disk is an error and not a panic.
    std::fs::File::open(src).map_err(HostError::io(src))?;
    let tmp = dst.with_extension("img.tmp");
    let (s, t) = (src.to_path_buf(), tmp.clone());
    // qcow2-rs' futures are not Send: the whole copy runs on a blocking thread, driven there.
    let r = tokio::task::spawn_blocking(move || futures::executor::block_on(copy_clusters(&s, &t)))
        .await
        .map_err(|e| HostError::Command {
            what: format!("converting {}", src.display()),
            detail: e.to_string(),
        })?;
    let stats = match r {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, dst).map_err(HostError::io(dst))?;
    Ok(stats)
}

#[cfg(any(target_os = "macos", all(test, unix)))]
async fn copy_clusters(src: &Path, dst: &Path) -> Result<Converted> {
    use std::os::unix::fs::FileExt;

    use qcow2_rs::dev::Qcow2DevParams;
    use qcow2_rs::meta::MappingSource;

    let fail = |e: qcow2_rs::error::Qcow2Error| HostError::Command {
        what: format!("reading the qcow2 {}", src.display()),
        detail: e.to_string(),
    };
    let params = Qcow2DevParams::new(9, None, None, true, false);
    let dev = qcow2_rs::utils::qcow2_setup_dev_sync(src, &params).map_err(fail)?;
    dev.qcow2_prep_io().await.map_err(fail)?;
    let size = dev.info.virtual_size();
    let cluster = dev.info.cluster_size();
    let out = std::fs::File::create(dst).map_err(HostError::io(dst))?;
    out.set_len(size).map_err(HostError::io(dst))?;
    let mut buf = qcow2_rs::helpers::Qcow2IoBuf::<u8>::new(cluster);
    let mut data_bytes = 0u64;
    let mut off = 0u64;
    while off < size {
        let len = cluster.min(usize::try_from(size - off).unwrap_or(cluster));
        let mapping = dev.get_mapping(off).await.map_err(fail)?;
        if !matches!(
            mapping.source,
            MappingSource::Unallocated | MappingSource::Zero
        ) {
            let chunk = &mut buf[..len];
            dev.read_at(chunk, off).await.map_err(fail)?;
            // Allocated but zero (e.g. preallocated): stays a hole.
            if chunk.iter().any(|b| *b != 0) {
                out.write_all_at(chunk, off).map_err(HostError::io(dst))?;
                data_bytes += len as u64;
            }
        }
        off += len as u64;
    }
    out.sync_all().map_err(HostError::io(dst))?;
    Ok(Converted {
        virtual_bytes: size,
        data_bytes,
    })
}

#[cfg(not(any(target_os = "macos", all(test, unix))))]
pub async fn convert(_src: &Path, _dst: &Path) -> Result<Converted> {
    Err(HostError::NotSupported(
        "converting a qcow2 data disk to raw",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_follows_what_exists() {
        let d = tempfile::tempdir().unwrap();
        let q = d.path().join("data.qcow2");
        assert_eq!(raw_path(&q), d.path().join("data.img"));
        assert_eq!(
            action(&q, 2),
            Action::Create {
                bytes: 2 * 1024 * 1024 * 1024
            }
        );
        std::fs::write(&q, b"QFI\xfb").unwrap();
        assert_eq!(action(&q, 2), Action::Convert { from: q.clone() });
        std::fs::write(raw_path(&q), b"").unwrap();
        assert_eq!(action(&q, 2), Action::Use);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn an_empty_disk_is_sparse_and_made_once() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let q = d.path().join("data.qcow2");
        let raw = ensure(&q, 4).await.unwrap();
        let m = std::fs::metadata(&raw).unwrap();
        assert_eq!(m.len(), 4 << 30);
        assert!(m.blocks() * 512 < 1 << 20, "{} blocks", m.blocks());
        std::fs::write(&raw, b"kept").unwrap();
        assert_eq!(ensure(&q, 4).await.unwrap(), raw);
        assert_eq!(std::fs::read(&raw).unwrap(), b"kept");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_missing_qcow2_is_an_error_not_a_panic() {
        let d = tempfile::tempdir().unwrap();
        let err = convert(&d.path().join("none.qcow2"), &d.path().join("x.img"))
            .await
            .unwrap_err();
        assert!(matches!(err, HostError::Io { .. }), "{err}");
    }

    // Needs qemu-img to make the qcow2 (the Windows checks under wine have none).
    #[cfg(unix)]
    #[tokio::test]
    async fn a_qcow2_converts_to_the_same_bytes_with_holes() {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let d = tempfile::tempdir().unwrap();
        // A 64 MiB raw source with data at three places, one of them not cluster-aligned and
        // one in the very last bytes.
        let src = d.path().join("src.raw");
        let f = std::fs::File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        let pattern: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 + 1).collect();
        f.write_all_at(&pattern, 0).unwrap();
        f.write_all_at(b"berth in the middle", (21 << 20) + 12_345)
            .unwrap();
        f.write_all_at(b"end", (64 << 20) - 3).unwrap();
        drop(f);
        let q = d.path().join("data.qcow2");
        let out = std::process::Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
            .arg(&src)
            .arg(&q)
            .output()
            .expect("qemu-img missing: run scripts/install-vm-tools.sh");
        assert!(out.status.success(), "{out:?}");

        let raw = ensure(&q, 1).await.unwrap();
        assert_eq!(raw, raw_path(&q));
        assert!(!q.exists(), "the qcow2 is moved aside");
        assert!(converted_path(&q).exists());
        assert_eq!(std::fs::read(&raw).unwrap(), std::fs::read(&src).unwrap());
        // Three clusters' worth of data (64 KiB clusters), not 64 MiB.
        let allocated = std::fs::metadata(&raw).unwrap().blocks() * 512;
        assert!(allocated < 2 << 20, "{allocated} bytes allocated");
        // Second start: used as it is.
        assert_eq!(action(&q, 1), Action::Use);
    }
}
