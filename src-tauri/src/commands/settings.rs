//! Settings: the engine socket (the app's own file) and the VM's resources (Berth's
//! `config.json`, shared with `berth start`).

use serde::{Deserialize, Serialize};
use tauri::State;

use crate::engine::SocketChoice;
use crate::error::{AppError, Result};
use crate::settings::AppSettings;
use crate::state::AppState;

/// The VM resources as `berth_host::Config` has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmResources {
    pub cpus: u32,
    pub memory_mib: u32,
    pub disk_gib: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub docker_host: String,
    /// The socket in use and why (env, settings, DOCKER_HOST or the VM's).
    pub socket: SocketChoice,
    pub vm: VmResources,
    pub settings_file: String,
    pub vm_config_file: String,
    /// Whether the app starts at login, and where that entry is.
    pub start_at_login: bool,
    pub login_item: String,
    /// The terminal's debug shell image (the setting, or the default).
    pub debug_image: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsUpdate {
    pub docker_host: String,
    pub vm: VmResources,
    /// Turns the login entry on or off (left alone when absent).
    #[serde(default)]
    pub start_at_login: Option<bool>,
    /// The debug shell's image (left alone when absent; blank = the default).
    #[serde(default)]
    pub debug_image: Option<String>,
}

/// Bounds the form accepts (the VM needs some memory to boot; disks only grow).
pub fn validate(vm: &VmResources, current_disk: u32) -> Result<()> {
    if !(1..=64).contains(&vm.cpus) {
        return Err(AppError::Invalid("CPUs must be between 1 and 64".into()));
    }
    if !(256..=262_144).contains(&vm.memory_mib) {
        return Err(AppError::Invalid(
            "memory must be between 256 and 262144 MiB".into(),
        ));
    }
    if vm.disk_gib < current_disk || vm.disk_gib > 4096 {
        return Err(AppError::Invalid(format!(
            "disk size must be between {current_disk} (the current size; disks only grow) and 4096 GiB"
        )));
    }
    Ok(())
}

/// Berth's config as `berth start` would read it; looking does not create `~/.berth`.
fn load_config(berth: &berth_host::StateDir) -> Result<berth_host::Config> {
    if berth.config_file().exists() {
        Ok(berth_host::Config::load_or_init(berth)?)
    } else {
        Ok(berth_host::Config::default())
    }
}

fn view(state: &AppState) -> Result<SettingsView> {
    let c = load_config(&state.berth)?;
    let login = crate::autostart::login_item()?;
    Ok(SettingsView {
        start_at_login: login.enabled(),
        login_item: login.location(),
        debug_image: state.settings().debug_image(),
        docker_host: state.settings().docker_host.unwrap_or_default(),
        socket: state.engine().socket().clone(),
        vm: VmResources {
            cpus: c.cpus,
            memory_mib: c.memory_mib,
            disk_gib: c.disk_gib,
        },
        settings_file: AppSettings::file(&state.config_dir).display().to_string(),
        vm_config_file: state.berth.config_file().display().to_string(),
    })
}

#[tauri::command]
pub fn settings_get(state: State<'_, AppState>) -> Result<SettingsView> {
    view(&state)
}

/// Saves both files; the VM resources apply at the next `berth start`.
#[tauri::command]
pub fn settings_save(state: State<'_, AppState>, update: SettingsUpdate) -> Result<SettingsView> {
    let host = update.docker_host.trim();
    tracing::info!(docker_host = host, vm = ?update.vm, "saving settings");
    if !host.is_empty() && crate::engine::socket::unix_path(host).is_none() {
        return Err(AppError::Invalid(format!(
            "{host:?} is not a unix socket (unix:///path)"
        )));
    }
    state.berth.create()?;
    let mut c = load_config(&state.berth)?;
    validate(&update.vm, c.disk_gib)?;
    c.cpus = update.vm.cpus;
    c.memory_mib = update.vm.memory_mib;
    c.disk_gib = update.vm.disk_gib;
    c.save(&state.berth)?;
    if let Some(on) = update.start_at_login {
        crate::autostart::login_item()?.set(on)?;
    }
    let debug_image = match update.debug_image.as_deref().map(str::trim) {
        None => state.settings().debug_image,
        Some("") => None,
        Some(image) => {
            super::images::split_reference(image)?;
            Some(image.to_string())
        }
    };
    state.set_settings(AppSettings {
        docker_host: (!host.is_empty()).then(|| host.to_string()),
        debug_image,
    })?;
    view(&state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(cpus: u32, memory_mib: u32, disk_gib: u32) -> VmResources {
        VmResources {
            cpus,
            memory_mib,
            disk_gib,
        }
    }

    #[test]
    fn resources_are_bounded() {
        assert!(validate(&vm(2, 1024, 16), 16).is_ok());
        assert!(validate(&vm(0, 1024, 16), 16).is_err());
        assert!(validate(&vm(2, 100, 16), 16).is_err());
        let e = validate(&vm(2, 1024, 8), 16).unwrap_err();
        assert_eq!(e.code().as_str(), "invalid");
    }
}
