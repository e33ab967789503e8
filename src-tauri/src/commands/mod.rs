//! Tauri commands, one file per area, named `area_verb`. Each is a thin forward to the Docker
//! client or `berth-host`; errors are [`crate::error::AppError`] (`{code, message}` in the UI).

pub mod build;
pub mod compose;
pub mod containers;
pub mod contexts;
pub mod debug_shell;
pub mod detail;
pub mod disk;
pub mod engine_config;
pub mod exec;
pub mod files;
pub mod image_detail;
pub mod image_waste;
pub mod images;
pub mod logs;
pub mod networks;
pub mod run_line;
pub mod settings;
pub mod shells;
pub mod system;
pub mod system_socket;
pub mod tray;
pub mod troubleshoot;
pub mod vm;
pub mod volume_helper;
pub mod volumes;

/// Every command, for `tauri::Builder::invoke_handler`.
#[macro_export]
macro_rules! all_commands {
    () => {
        tauri::generate_handler![
            $crate::commands::compose::compose_list,
            $crate::commands::compose::compose_start,
            $crate::commands::compose::compose_stop,
            $crate::commands::compose::compose_restart,
            $crate::commands::compose::compose_remove,
            $crate::commands::compose::compose_down,
            $crate::commands::compose::compose_config,
            $crate::commands::compose::compose_open_folder,
            $crate::commands::containers::containers_list,
            $crate::commands::containers::containers_start,
            $crate::commands::containers::containers_stop,
            $crate::commands::containers::containers_restart,
            $crate::commands::containers::containers_pause,
            $crate::commands::containers::containers_unpause,
            $crate::commands::containers::containers_remove,
            $crate::commands::containers::containers_logs,
            $crate::commands::containers::containers_stats,
            $crate::commands::detail::containers_inspect,
            $crate::commands::exec::containers_exec,
            $crate::commands::exec::containers_attach,
            $crate::commands::debug_shell::containers_debug_shell,
            $crate::commands::shells::containers_shells,
            $crate::commands::files::containers_files_list,
            $crate::commands::files::containers_files_read,
            $crate::commands::files::containers_files_save,
            $crate::commands::files::containers_files_upload,
            $crate::commands::files::containers_files_upload_paths,
            $crate::commands::logs::containers_logs_save,
            $crate::commands::exec::containers_exec_input,
            $crate::commands::exec::containers_exec_resize,
            $crate::commands::images::images_list,
            $crate::commands::images::images_pull,
            $crate::commands::images::images_remove,
            $crate::commands::images::images_run,
            $crate::commands::image_detail::images_inspect,
            $crate::commands::image_detail::images_tag,
            $crate::commands::image_detail::images_push,
            $crate::commands::image_waste::images_wasted,
            $crate::commands::build::images_build,
            $crate::commands::build::builds_list,
            $crate::commands::build::builds_log,
            $crate::commands::volumes::volumes_list,
            $crate::commands::volumes::volumes_create,
            $crate::commands::volumes::volumes_remove,
            $crate::commands::volumes::volumes_inspect,
            $crate::commands::volumes::volumes_files_list,
            $crate::commands::volumes::volumes_files_read,
            $crate::commands::volumes::volumes_files_save,
            $crate::commands::volumes::volumes_files_upload,
            $crate::commands::volumes::volumes_files_upload_paths,
            $crate::commands::volumes::volumes_export,
            $crate::commands::volumes::volumes_import,
            $crate::commands::volumes::volumes_clone,
            $crate::commands::networks::networks_list,
            $crate::commands::networks::networks_create,
            $crate::commands::networks::networks_remove,
            $crate::commands::system::system_status,
            $crate::commands::system::system_stream_stop,
            $crate::commands::system::system_streams_running,
            $crate::commands::system::system_stream_stop_all,
            $crate::commands::system::system_open_url,
            $crate::commands::vm::vm_status,
            $crate::commands::vm::vm_start,
            $crate::commands::vm::vm_stop,
            $crate::commands::vm::vm_restart,
            $crate::commands::troubleshoot::troubleshoot_log,
            $crate::commands::troubleshoot::troubleshoot_bundle,
            $crate::commands::troubleshoot::troubleshoot_reset_plan,
            $crate::commands::troubleshoot::troubleshoot_reset,
            $crate::commands::settings::settings_get,
            $crate::commands::settings::settings_save,
            $crate::commands::engine_config::daemon_json_get,
            $crate::commands::engine_config::daemon_json_check,
            $crate::commands::engine_config::daemon_json_save,
            $crate::commands::engine_config::engine_restart,
            $crate::commands::contexts::contexts_list,
            $crate::commands::contexts::contexts_use,
            $crate::commands::contexts::contexts_create_berth,
            $crate::commands::system_socket::system_socket_status,
            $crate::commands::system_socket::system_socket_link,
            $crate::commands::system_socket::system_socket_unlink,
            $crate::commands::disk::disk_usage,
            $crate::commands::disk::disk_prune,
            $crate::commands::disk::disk_compact,
            $crate::commands::tray::tray_menu,
            $crate::commands::tray::tray_activate,
        ]
    };
}
