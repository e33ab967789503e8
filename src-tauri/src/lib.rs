//! Berth's desktop app: a thin Tauri 2 shell. The UI (`ui/`, plain ES modules) calls the
//! commands in [`commands`] (`area_verb`), which forward to the Docker API on the engine socket
//! ([`engine`]) or to `berth-host` / the `berth` CLI for the VM. Long-lived streams are owned by
//! [`streams::Streams`]; Docker events and the engine state are pushed by [`events`]; the tray
//! lives in [`tray`]. See `docs/dev/gui.md`.

pub mod autostart;
pub mod build;
pub mod commands;
pub mod engine;
pub mod error;
pub mod events;
pub mod fsutil;
mod log;
pub mod settings;
pub mod state;
pub mod streams;
pub mod tray;
pub mod wasted;

use tauri::{AppHandle, Manager, RunEvent, Runtime, WindowEvent};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Cancels the engine watcher on exit.
struct Shutdown(CancellationToken);

/// Builds and runs the app until it quits.
pub fn run() {
    let app = tauri::Builder::default()
        .invoke_handler(all_commands!())
        .on_window_event(|window, event| {
            // Closing the window keeps the app in the tray (Quit is in the tray's menu).
            if let WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                if let Err(e) = window.hide() {
                    tracing::warn!(error = %e, "hiding the window");
                }
            }
        })
        .setup(|app| {
            log::init(&app.path().app_log_dir()?);
            let state = AppState::new(
                app.path().app_config_dir()?,
                berth_host::StateDir::default_location(),
            );
            app.manage(state);
            tray::build(app.handle())?;
            if std::env::args().any(|a| a == autostart::HIDDEN_ARG) {
                // Started at login: only the tray until the user opens the dashboard.
                if let Some(w) = app.get_webview_window("main") {
                    w.hide()?;
                }
            }
            let cancel = CancellationToken::new();
            tray::spawn_updater(app.handle().clone(), cancel.clone());
            events::spawn_watcher(app.handle().clone(), cancel.clone());
            app.manage(Shutdown(cancel));
            tracing::info!(version = env!("CARGO_PKG_VERSION"), "berth-app started");
            Ok(())
        })
        .build(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("berth-app: cannot start: {e}");
            std::process::exit(1);
        });
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            stop_tasks(app);
        }
    });
}

/// Stops the watcher and every stream.
fn stop_tasks<R: Runtime>(app: &AppHandle<R>) {
    if let Some(s) = app.try_state::<Shutdown>() {
        s.0.cancel();
    }
    if let Some(s) = app.try_state::<AppState>() {
        tracing::info!(streams = s.streams.running(), "stopping streams");
        s.streams.stop_all();
    }
}

/// Quits the app (tray Quit).
pub fn quit<R: Runtime>(app: &AppHandle<R>) {
    stop_tasks(app);
    app.exit(0);
}
