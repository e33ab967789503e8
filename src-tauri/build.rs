fn main() {
    // The UI is embedded at compile time; ui/vendor/ is filled by scripts/install-gui-deps.sh
    // (npm), so files appearing there must rebuild the app too.
    println!("cargo:rerun-if-changed=../ui/vendor");
    tauri_build::build();
}
