//! The tray as data, for the UI and the GUI tests: the model the tray menu is built from, and
//! running one of its entries exactly as a click on it does.

use serde::Serialize;
use tauri::{AppHandle, Manager, State};

use crate::error::Result;
use crate::tray::model::TrayModel;
use crate::tray::Tray;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrayView {
    /// The menu as the tray shows it (last built).
    pub shown: Option<TrayModel>,
    /// Whether the main window is shown (closing it only hides it).
    pub window_visible: bool,
}

#[tauri::command]
pub fn tray_menu(app: AppHandle, tray: State<'_, Tray>) -> TrayView {
    TrayView {
        shown: tray.shown(),
        window_visible: app
            .get_webview_window("main")
            .and_then(|w| w.is_visible().ok())
            .unwrap_or(false),
    }
}

/// Runs the tray entry `id` (see `tray::model::Action`) and returns when it is done.
#[tauri::command]
pub async fn tray_activate(app: AppHandle, id: String) -> Result<()> {
    crate::tray::activate(&app, &id).await
}
