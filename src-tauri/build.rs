fn main() {
    // The UI is embedded at compile time. Watching the whole folder also catches files that no
    // embedded file named before: ui/vendor/ (filled by scripts/install-gui-deps.sh from npm)
    // and new modules.
    println!("cargo:rerun-if-changed=../ui");
    tauri_build::build();
}
