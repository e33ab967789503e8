//! Kernel modules the engine needs, listed in the image's `/etc/berth/modules` (from
//! `vm-image/modules.txt`) and loaded with kmod's `modprobe`, which resolves dependencies.
//!
//! Loading the ~60 modules takes over a second under TCG. Only [`BEFORE_ENGINE`] is loaded before
//! the engine starts; the rest load in the background (the kernel also loads most of them on
//! demand through `/sbin/modprobe`: bridge and veth links, nftables chains, overlay mounts).
//! Device drivers are never loaded on demand (there is no udev), hence the first list.

use std::process::Stdio;

const MODULE_LIST: &str = "/etc/berth/modules";

/// Needed before the engine starts: the NIC, vsock and virtio-serial drivers (devices, not
/// loaded on demand; the agent's ports are virtio-serial where there is no vsock), the power
/// button, br_netfilter (never requested by the kernel; pulls in bridge),
/// qemu_fw_cfg (the host's daemon.json) and virtio_balloon (free-page reporting).
pub(crate) const BEFORE_ENGINE: &[&str] = &[
    "virtio_net",
    "qemu_fw_cfg",
    "virtio_balloon",
    "vmw_vsock_virtio_transport",
    "virtio_console",
    "button",
    "evdev",
    "br_netfilter",
];

/// Loads `first` now, then starts loading the whole list in the background; the child is
/// reaped by PID 1's loop and its errors go to the console and the init log.
pub(crate) fn load(first: &[&str]) {
    match super::command("modprobe").arg("-a").args(first).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => tracing::warn!(
            "modprobe failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => tracing::warn!("cannot run modprobe: {e}"),
    }
    let list = match std::fs::read_to_string(MODULE_LIST) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot read {MODULE_LIST}: {e}");
            return;
        }
    };
    let child = super::command("modprobe")
        .arg("-a")
        .args(module_names(&list))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    match child {
        Ok(mut c) => {
            if let Some(err) = c.stderr.take() {
                super::log::copy_lines(err, "init.log");
            }
        }
        Err(e) => tracing::warn!("cannot run modprobe: {e}"),
    }
}

fn module_names(list: &str) -> Vec<&str> {
    list.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_skips_comments_and_blanks() {
        assert_eq!(
            module_names("# x\nveth\n\n bridge # for docker0\n"),
            ["veth", "bridge"]
        );
    }
}
