//! The data disk: found by virtio serial `berth-data` (else `/dev/vda`), formatted ext4 on first
//! boot when it holds no data at all, and mounted at the engine's data root.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::mount::{mount, MsFlags};

/// The engine's data root, on the data disk.
pub(crate) const DATA_ROOT: &str = "/var/lib/berth";
/// virtio serial of the data disk (`-device virtio-blk-pci,serial=berth-data`).
const DATA_SERIAL: &str = "berth-data";
/// Used when no disk carries the serial.
const DATA_FALLBACK: &str = "/dev/vda";
const LABEL: &str = "berth-data";

/// What the first blocks of a disk hold.
#[derive(Debug, PartialEq)]
enum Content {
    /// Only zeros: a fresh disk, safe to format.
    Empty,
    /// An ext2/3/4 superblock.
    Ext4,
    /// Anything else: never formatted over.
    Other,
}

/// Finds, formats when empty, and mounts the data disk. Returns whether it was formatted.
pub(crate) fn mount_data() -> anyhow::Result<bool> {
    let dev = find_by_serial(Path::new("/sys/block"), DATA_SERIAL)
        .map(|name| PathBuf::from("/dev").join(name))
        .unwrap_or_else(|| PathBuf::from(DATA_FALLBACK));
    let formatted =
        match probe(&dev).with_context(|| format!("failed to read {}", dev.display()))? {
            Content::Ext4 => false,
            Content::Empty => {
                tracing::info!("formatting the empty data disk {}", dev.display());
                format(&dev)?;
                true
            }
            Content::Other => bail!(
                "data disk {} holds something other than ext4; not formatting it",
                dev.display()
            ),
        };
    std::fs::create_dir_all(DATA_ROOT).with_context(|| format!("failed to create {DATA_ROOT}"))?;
    mount(
        Some(&dev),
        DATA_ROOT,
        Some("ext4"),
        MsFlags::MS_NOATIME,
        None::<&str>,
    )
    .with_context(|| format!("failed to mount {} on {DATA_ROOT}", dev.display()))?;
    let how = if formatted { "formatted" } else { "existing" };
    tracing::info!(
        "data disk mounted at {DATA_ROOT} ({how}, {})",
        dev.display()
    );
    Ok(formatted)
}

/// The block device under `sys_block` (e.g. `vdb`) whose `serial` file reads `serial`.
fn find_by_serial(sys_block: &Path, serial: &str) -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir(sys_block)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_to_string(e.path().join("serial")).is_ok_and(|s| s.trim() == serial)
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Reads the first 64 KiB: zeros, an ext superblock (magic 0xEF53 at byte 1080) or other.
fn probe(dev: &Path) -> std::io::Result<Content> {
    let mut head = vec![0u8; 64 * 1024];
    let mut f = File::open(dev)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    head.truncate(n);
    Ok(classify(&head))
}

fn classify(head: &[u8]) -> Content {
    if head.get(1080..1082) == Some(&[0x53, 0xef]) {
        Content::Ext4
    } else if head.iter().all(|b| *b == 0) {
        Content::Empty
    } else {
        Content::Other
    }
}

fn format(dev: &Path) -> anyhow::Result<()> {
    let out = super::command("mkfs.ext4")
        .args(["-q", "-F", "-L", LABEL, "-m", "0"])
        .args(["-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard"])
        .arg(dev)
        .output()
        .context("failed to run mkfs.ext4")?;
    if !out.status.success() {
        bail!(
            "mkfs.ext4 {} failed: {}",
            dev.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_tells_empty_ext4_and_other() {
        let mut head = vec![0u8; 4096];
        assert_eq!(classify(&head), Content::Empty);
        head[1080] = 0x53;
        head[1081] = 0xef;
        assert_eq!(classify(&head), Content::Ext4);
        let mut other = vec![0u8; 4096];
        other[510] = 0x55;
        other[511] = 0xaa;
        assert_eq!(classify(&other), Content::Other);
    }

    #[test]
    fn probe_reads_a_file_backed_disk() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk");
        std::fs::write(&disk, vec![0u8; 2 * 1024 * 1024]).unwrap();
        assert_eq!(probe(&disk).unwrap(), Content::Empty);
        format(&disk).unwrap();
        assert_eq!(probe(&disk).unwrap(), Content::Ext4);
    }

    #[test]
    fn find_by_serial_matches_trimmed_serial() {
        let dir = tempfile::tempdir().unwrap();
        for (name, serial) in [
            ("vda", Some("berth-root\n")),
            ("vdb", Some("berth-data\n")),
            ("vdc", None),
        ] {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
            if let Some(s) = serial {
                std::fs::write(dir.path().join(name).join("serial"), s).unwrap();
            }
        }
        assert_eq!(
            find_by_serial(dir.path(), "berth-data").as_deref(),
            Some("vdb")
        );
        assert_eq!(find_by_serial(dir.path(), "nope"), None);
    }
}
