//! The tray icon. Its menu and icon are rebuilt from [`model::build`] whenever an input
//! changes: the engine state (the watcher in [`crate::events`] calls [`engine_changed`]) and the
//! running containers (listed again after each container event the watcher passes on through
//! [`containers_changed`]: pushed by `/events`, never polled). Menu ids are
//! [`model::Action`]s; [`activate`] runs one, for a click and for the `tray_activate` command
//! alike. VM actions run `berth start|stop` as the Settings view does.

pub mod model;

use std::sync::Mutex;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, RestartContainerOptions, StopContainerOptions,
};
use tauri::image::Image;
use tauri::menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::commands::system::EngineStatus;
use crate::engine::socket::SocketSource;
use crate::error::{AppError, Result};
use crate::state::AppState;
use model::{Action, Entry, TrayInput, TrayModel, VmBusy};

/// The tray icon's id.
pub const TRAY_ID: &str = "berth";

/// The tray's inputs and what was last shown (managed state).
#[derive(Default)]
pub struct Tray {
    input: Mutex<TrayInput>,
    shown: Mutex<Option<TrayModel>>,
    /// Serialises [`render`]. It is held while Tauri builds and sets the menu, which waits for
    /// the main thread, so it is never taken there (sync commands such as `tray_menu` run on
    /// the main thread; holding `shown` across those calls deadlocked them).
    rendering: Mutex<()>,
    /// Woken when the running containers may have changed.
    containers: Notify,
}

impl Tray {
    fn update(&self, f: impl FnOnce(&mut TrayInput)) {
        f(&mut self.input.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// What the tray shows now (the menu last built; `None` before the first).
    pub fn shown(&self) -> Option<TrayModel> {
        self.shown.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The model for the current inputs.
    pub fn model(&self) -> TrayModel {
        model::build(&self.input.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Creates the tray icon (stopped, empty menu until the first engine probe).
pub fn build<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    app.manage(Tray::default());
    let m = app.state::<Tray>().model();
    let mut tray = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip(&m.tooltip)
        .menu(&menu(app, &m.items)?)
        .on_menu_event(|app, event| on_menu(app, event.id.as_ref()));
    if let Some(icon) = icon(app, m.icon) {
        tray = tray.icon(icon);
    }
    tray.build(app)?;
    *app.state::<Tray>()
        .shown
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(m);
    Ok(())
}

/// The app icon with the state's badge.
fn icon<R: Runtime>(app: &AppHandle<R>, state: model::IconState) -> Option<Image<'static>> {
    let base = app.default_window_icon()?;
    let rgba = model::badge(base.rgba(), base.width(), base.height(), state.color());
    Some(Image::new_owned(rgba, base.width(), base.height()))
}

/// Tauri menu items for `entries` (kept alive by the menu that holds them).
fn items<R: Runtime>(
    app: &AppHandle<R>,
    entries: &[Entry],
) -> tauri::Result<Vec<Box<dyn IsMenuItem<R>>>> {
    entries
        .iter()
        .map(|e| -> tauri::Result<Box<dyn IsMenuItem<R>>> {
            Ok(match e {
                Entry::Item { id, label, enabled } => Box::new(MenuItem::with_id(
                    app,
                    id.as_str(),
                    label,
                    *enabled,
                    None::<&str>,
                )?),
                Entry::Separator => Box::new(PredefinedMenuItem::separator(app)?),
                Entry::Submenu {
                    id,
                    label,
                    items: sub,
                } => {
                    let children = items(app, sub)?;
                    let refs: Vec<&dyn IsMenuItem<R>> = children.iter().map(|b| &**b).collect();
                    Box::new(Submenu::with_id_and_items(
                        app,
                        id.as_str(),
                        label,
                        true,
                        &refs,
                    )?)
                }
            })
        })
        .collect()
}

fn menu<R: Runtime>(app: &AppHandle<R>, entries: &[Entry]) -> tauri::Result<Menu<R>> {
    let children = items(app, entries)?;
    let refs: Vec<&dyn IsMenuItem<R>> = children.iter().map(|b| &**b).collect();
    Menu::with_items(app, &refs)
}

/// Shows the model for the current inputs when it differs from what is shown. Called from
/// async tasks only (never the main thread: see [`Tray::rendering`]).
fn render<R: Runtime>(app: &AppHandle<R>) {
    let Some(tray) = app.try_state::<Tray>() else {
        return;
    };
    let _one = tray.rendering.lock().unwrap_or_else(|p| p.into_inner());
    let m = tray.model();
    if tray.shown().as_ref() == Some(&m) {
        return;
    }
    let Some(icon_handle) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let result = menu(app, &m.items)
        .and_then(|menu| icon_handle.set_menu(Some(menu)))
        .and_then(|()| icon_handle.set_tooltip(Some(&m.tooltip)))
        .and_then(|()| icon_handle.set_icon(icon(app, m.icon)));
    match result {
        Ok(()) => {
            tracing::debug!(icon = ?m.icon, status = %m.tooltip, "tray updated");
            *tray.shown.lock().unwrap_or_else(|p| p.into_inner()) = Some(m);
        }
        Err(e) => tracing::warn!(error = %e, "tray update failed"),
    }
}

/// The engine probe's result (and the VM's state, read alongside).
pub fn engine_changed<R: Runtime>(app: &AppHandle<R>, status: &EngineStatus) {
    let Some(tray) = app.try_state::<Tray>() else {
        return;
    };
    let state = app.state::<AppState>();
    let vm = crate::commands::vm::read_status(&state.berth);
    let ready = status.state == "ready";
    tray.update(|i| {
        i.engine_ready = ready;
        i.engine_version = status.version.clone();
        i.uses_berth_vm = status.socket.source == SocketSource::BerthVm;
        i.vm_state = vm.state;
        if ready {
            i.error = None;
        } else {
            i.containers.clear();
        }
    });
    if ready {
        tray.containers.notify_one();
    }
    render(app);
}

/// A container event arrived: the running set may have changed.
pub fn containers_changed<R: Runtime>(app: &AppHandle<R>) {
    if let Some(tray) = app.try_state::<Tray>() {
        tray.containers.notify_one();
    }
}

/// Lists the running containers each time [`containers_changed`] or [`engine_changed`] asks
/// (bursts of events coalesce into one listing), until `cancel` fires.
pub fn spawn_updater<R: Runtime>(app: AppHandle<R>, cancel: CancellationToken) {
    tauri::async_runtime::spawn(async move {
        loop {
            let tray = app.state::<Tray>();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tray.containers.notified() => {}
            }
            match running(&app.state::<AppState>()).await {
                Ok(list) => tray.update(|i| i.containers = list),
                Err(e) => tracing::debug!(error = %e, "tray: listing containers"),
            }
            render(&app);
        }
    });
}

async fn running(state: &AppState) -> Result<Vec<model::TrayContainer>> {
    let e = state.engine();
    // Paused containers still hold their processes and ports: listed, marked paused.
    let filters = std::collections::HashMap::from([(
        "status",
        vec!["running".to_string(), "paused".to_string()],
    )]);
    let opts = ListContainersOptionsBuilder::default()
        .filters(&filters)
        .build();
    let list = e.docker()?.list_containers(Some(opts)).await;
    Ok(list
        .map_err(|x| e.err(x))?
        .into_iter()
        .map(model::TrayContainer::from)
        .collect())
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let app = app.clone();
    let id = id.to_string();
    tauri::async_runtime::spawn(async move {
        if let Err(e) = activate(&app, &id).await {
            tracing::error!(error = %e, id, "tray action failed");
        }
    });
}

/// Runs the action of menu id `id` and returns when it is done.
pub async fn activate<R: Runtime>(app: &AppHandle<R>, id: &str) -> Result<()> {
    let action =
        Action::parse(id).ok_or_else(|| AppError::Invalid(format!("no tray action {id:?}")))?;
    tracing::info!(?action, "tray action");
    let state = app.state::<AppState>();
    match action {
        Action::OpenDashboard => show_window(app),
        Action::Quit => {
            crate::quit(app);
            Ok(())
        }
        Action::Open(url) => crate::commands::system::system_open_url(url),
        Action::ContainerStop(id) => stop(&state, &id).await,
        Action::ContainerRestart(id) => restart(&state, &id).await,
        Action::ContainerPause(id) => crate::commands::containers::pause(&state, &id, true).await,
        Action::ContainerUnpause(id) => {
            crate::commands::containers::pause(&state, &id, false).await
        }
        Action::ProjectStop(p) => {
            futures::future::try_join_all(members(app, &p).iter().map(|id| stop(&state, id)))
                .await
                .map(drop)
        }
        Action::ProjectRestart(p) => {
            futures::future::try_join_all(members(app, &p).iter().map(|id| restart(&state, id)))
                .await
                .map(drop)
        }
        Action::VmStart => vm(app, VmBusy::Starting).await,
        Action::VmStop => vm(app, VmBusy::Stopping).await,
        Action::VmRestart => vm(app, VmBusy::Restarting).await,
    }
}

/// The running containers of compose project `p`, as the tray lists them.
fn members<R: Runtime>(app: &AppHandle<R>, p: &str) -> Vec<String> {
    let tray = app.state::<Tray>();
    let input = tray.input.lock().unwrap_or_else(|p| p.into_inner());
    input
        .containers
        .iter()
        .filter(|c| c.project == p)
        .map(|c| c.id.clone())
        .collect()
}

async fn stop(state: &AppState, id: &str) -> Result<()> {
    let e = state.engine();
    let r = e
        .docker()?
        .stop_container(id, None::<StopContainerOptions>)
        .await;
    r.map_err(|x| e.err(x))
}

async fn restart(state: &AppState, id: &str) -> Result<()> {
    let e = state.engine();
    let r = e
        .docker()?
        .restart_container(id, None::<RestartContainerOptions>)
        .await;
    r.map_err(|x| e.err(x))
}

/// Runs a VM action, showing it as busy meanwhile and its failure afterwards.
async fn vm<R: Runtime>(app: &AppHandle<R>, what: VmBusy) -> Result<()> {
    let tray = app.state::<Tray>();
    tray.update(|i| {
        i.busy = Some(what);
        i.error = None;
    });
    render(app);
    let state = app.state::<AppState>();
    let r = match what {
        VmBusy::Starting => crate::commands::vm::start(&state).await.map(drop),
        VmBusy::Stopping => crate::commands::vm::stop(&state).await.map(drop),
        VmBusy::Restarting => match crate::commands::vm::stop(&state).await {
            Ok(_) => crate::commands::vm::start(&state).await.map(drop),
            Err(e) => Err(e),
        },
    };
    let vm_state = crate::commands::vm::read_status(&state.berth).state;
    tray.update(|i| {
        i.busy = None;
        i.vm_state = vm_state;
        i.error = r.as_ref().err().map(ToString::to_string);
    });
    render(app);
    // The engine's state follows from the watcher's next probe.
    state.reconnect.notify_one();
    r
}

/// Shows, un-minimises and focuses the main window.
pub fn show_window<R: Runtime>(app: &AppHandle<R>) -> Result<()> {
    let w = app
        .get_webview_window("main")
        .ok_or_else(|| AppError::Invalid("no main window".into()))?;
    w.show()
        .and_then(|()| w.unminimize())
        .and_then(|()| w.set_focus())
        .map_err(|e| AppError::Client(format!("showing the window: {e}")))
}
