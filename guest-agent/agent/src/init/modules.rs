//! Kernel modules the engine needs, listed in the image's `/etc/berth/modules` (from
//! `vm-image/modules.txt`) and loaded with kmod's `modprobe`, which resolves dependencies.

use std::process::Command;

const MODULE_LIST: &str = "/etc/berth/modules";

/// Loads every listed module. A module that fails to load is logged and skipped: the engine may
/// still work without it, and its own error will then name what is missing.
pub(crate) fn load() {
    let list = match std::fs::read_to_string(MODULE_LIST) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot read {MODULE_LIST}: {e}");
            return;
        }
    };
    let names = module_names(&list);
    if names.is_empty() {
        return;
    }
    match Command::new("modprobe").arg("-a").args(&names).output() {
        Ok(out) if out.status.success() => tracing::debug!("loaded {} kernel modules", names.len()),
        Ok(out) => tracing::warn!(
            "modprobe failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
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
