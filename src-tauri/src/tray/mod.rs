//! The tray icon: Show/Hide, the engine status line, Start/Stop VM, Quit (ids in
//! [`crate::events::tray_ids`]). VM actions run `berth start` / `berth stop` like the Settings
//! view; their errors go to the log and the status line.

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

use crate::events::tray_ids as ids;
use crate::state::AppState;

/// The status menu item, kept to update its text.
pub struct TrayStatus<R: Runtime>(MenuItem<R>);

pub fn build<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let show = MenuItem::with_id(app, ids::SHOW_HIDE, "Show/Hide Berth", true, None::<&str>)?;
    let status = MenuItem::with_id(app, ids::STATUS, "Engine: …", false, None::<&str>)?;
    let start = MenuItem::with_id(app, ids::VM_START, "Start VM", true, None::<&str>)?;
    let stop = MenuItem::with_id(app, ids::VM_STOP, "Stop VM", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, ids::QUIT, "Quit Berth", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &show,
            &status,
            &PredefinedMenuItem::separator(app)?,
            &start,
            &stop,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let mut tray = TrayIconBuilder::with_id(ids::TRAY)
        .tooltip("Berth")
        .menu(&menu)
        .on_menu_event(|app, event| on_menu(app, event.id.as_ref()));
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    app.manage(TrayStatus(status));
    Ok(())
}

/// Sets the status line (no-op before the tray exists).
pub fn set_status<R: Runtime>(app: &AppHandle<R>, text: &str) {
    if let Some(s) = app.try_state::<TrayStatus<R>>() {
        if let Err(e) = s.0.set_text(text) {
            tracing::debug!(error = %e, "tray status");
        }
    }
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    match id {
        ids::SHOW_HIDE => toggle_window(app),
        ids::VM_START | ids::VM_STOP => {
            let app = app.clone();
            let starting = id == ids::VM_START;
            set_status(
                &app,
                if starting {
                    "VM: starting…"
                } else {
                    "VM: stopping…"
                },
            );
            tauri::async_runtime::spawn(async move {
                let state = app.state::<AppState>();
                let r = if starting {
                    crate::commands::vm::start(&state).await
                } else {
                    crate::commands::vm::stop(&state).await
                };
                if let Err(e) = r {
                    tracing::error!(error = %e, "tray VM action failed");
                    set_status(&app, &format!("VM: {e}"));
                }
            });
        }
        ids::QUIT => crate::quit(app),
        _ => {}
    }
}

fn toggle_window<R: Runtime>(app: &AppHandle<R>) {
    let Some(w) = app.get_webview_window("main") else {
        return;
    };
    let r = if w.is_visible().unwrap_or(false) {
        w.hide()
    } else {
        w.show().and_then(|()| w.set_focus())
    };
    if let Err(e) = r {
        tracing::warn!(error = %e, "show/hide window");
    }
}
