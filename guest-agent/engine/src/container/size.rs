//! Directory sizes for `SizeRw`, `/system/df` and volume usage.

use std::path::Path;

/// Total size of regular files under `dir` (no symlink following; 0 when missing).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in rd.flatten() {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if m.is_dir() {
            total += dir_size(&e.path());
        } else if m.is_file() {
            total += m.len();
        }
    }
    total
}
