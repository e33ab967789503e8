use std::path::Path;

/// The npm modules the UI loads from `ui/vendor/` (copied there by
/// `scripts/install-gui-deps.sh`). Without them the app builds and starts but its terminal never
/// opens, so a build without them stops here and says how to get them.
const VENDOR_FILES: &[&str] = &["xterm.js", "addon-fit.js", "xterm.css"];

fn main() {
    // The UI is embedded at compile time. Watching the whole folder also catches files that no
    // embedded file named before: ui/vendor/ (filled by scripts/install-gui-deps.sh from npm)
    // and new modules.
    println!("cargo:rerun-if-changed=../ui");
    let missing: Vec<&str> = VENDOR_FILES
        .iter()
        .copied()
        .filter(|name| !Path::new("../ui/vendor").join(name).is_file())
        .collect();
    if !missing.is_empty() {
        panic!(
            "ui/vendor/ lacks {}: run `bash scripts/install-gui-deps.sh` first (it installs the \
             UI's npm modules with their lockfile and copies them there)",
            missing.join(", ")
        );
    }
    tauri_build::build();
}
