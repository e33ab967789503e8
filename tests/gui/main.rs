//! GUI end-to-end tests (tier 5): the real `berth-app` binary in a real WebKitGTK webview, under
//! a private Xvfb, driven over WebDriver (`tauri-driver` → `WebKitWebDriver`) by fantoccini,
//! against a fresh berth-agent (`Engine`) named by `BERTH_DOCKER_HOST`. The docker CLI checks
//! what the UI did, and the UI must show what the CLI did. See `docs/dev/gui.md`.
//!
//! Needs: `berth-app` and `berth-agent` built next to this test binary (or `BERTH_APP_BIN`,
//! `BERTH_AGENT_BIN`), `Xvfb`, `dbus-run-session`, `WebKitWebDriver` and `tauri-driver`
//! (`scripts/install-gui-deps.sh`). A missing one fails the test.

mod app;
mod build;
mod containers;
mod detail;
mod detail_tabs;
mod disk;
mod engine;
mod harness;
mod idle;
mod image_detail;
mod images;
mod packaging;
mod paused;
mod polish;
mod project_stats;
mod projects;
mod resources;
mod screen;
mod settings;
mod shells;
mod terminal;
mod tour;
mod tray;
mod troubleshoot;
mod volumes;
