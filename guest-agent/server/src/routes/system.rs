//! `/_ping`, `/version`, `/info`, `/system/df`, and the swarm, BuildKit and plugin endpoints
//! Berth answers the way an engine without them does.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use berth_engine::EngineError;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::version::{API_VERSION, MIN_API_VERSION};
use crate::AppState;

const SWARM_MESSAGE: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(df))
        .route("/plugins", get(plugins))
        .route("/plugins/privileges", any(no_plugins))
        .route("/plugins/pull", any(no_plugins))
        .route("/plugins/create", any(no_plugins))
        .route("/plugins/{*rest}", any(no_such_plugin));
    for p in [
        "/swarm",
        "/nodes",
        "/services",
        "/tasks",
        "/secrets",
        "/configs",
    ] {
        r = r
            .route(p, any(no_swarm))
            .route(&format!("{p}/{{*rest}}"), any(no_swarm));
    }
    r
}

async fn ping() -> Response {
    let mut r = "OK".into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("builder-version", HeaderValue::from_static("1"));
    h.insert("swarm", HeaderValue::from_static("inactive"));
    r
}

async fn no_swarm() -> ApiError {
    ApiError(EngineError::unavailable(SWARM_MESSAGE))
}

/// `docker plugin ls`: none installed.
async fn plugins() -> Json<Value> {
    Json(json!([]))
}

async fn no_plugins() -> ApiError {
    ApiError(EngineError::not_implemented(
        "plugins are not supported by this engine",
    ))
}

/// `/plugins/{name}/{json,enable,disable,push,set,upgrade}` and `DELETE /plugins/{name}`:
/// dockerd's text for a plugin it does not have.
async fn no_such_plugin(crate::extract::Path(rest): crate::extract::Path<String>) -> ApiError {
    let name = ["json", "enable", "disable", "push", "set", "upgrade"]
        .iter()
        .find_map(|a| rest.strip_suffix(&format!("/{a}")))
        .unwrap_or(&rest);
    ApiError(EngineError::not_found(format!(
        "plugin \"{name}\" not found"
    )))
}

fn kernel_version() -> String {
    nix_uname().unwrap_or_default()
}

fn nix_uname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

async fn version() -> Json<Value> {
    let v = berth_engine::VERSION;
    Json(json!({
        "Platform": {"Name": "Berth Engine"},
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Arch": go_arch(),
                "Os": "linux",
                "KernelVersion": kernel_version(),
                "Experimental": "false",
                "GitCommit": "",
                "GoVersion": "",
                "BuildTime": "",
            }
        }],
        "Version": v,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel_version(),
        "Experimental": false,
        "BuildTime": "",
    }))
}

fn cgroup_version() -> &'static str {
    // Pure v2 has cgroup.controllers at the root; hybrid and v1 report "1" like dockerd.
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

async fn info(
    axum::extract::State(engine): axum::extract::State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let cfg = &engine.config;
    let counts = engine.containers.counts().await;
    let images = engine.images.count().await;
    let runtimes: serde_json::Map<String, Value> = cfg
        .runtimes
        .iter()
        .map(|(name, r)| {
            (
                name.clone(),
                json!({"path": r.path, "runtimeArgs": r.runtime_args}),
            )
        })
        .collect();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Ok(Json(json!({
        "ID": engine.config.data_root.display().to_string(),
        "Containers": counts.total,
        "ContainersRunning": counts.running,
        "ContainersPaused": counts.paused,
        "ContainersStopped": counts.stopped,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "DockerRootDir": cfg.data_root.display().to_string(),
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": [],
            "Log": ["json-file"],
        },
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "OomKillDisable": false,
        "IPv4Forwarding": true,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": cfg.log_driver,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "NEventsListener": 0,
        "KernelVersion": kernel_version(),
        "OperatingSystem": "Berth",
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {},
            "Mirrors": cfg.registry_mirrors,
        },
        "NCPU": ncpu,
        "MemTotal": mem_total(),
        "GenericResources": [],
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": hostname(),
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": berth_engine::VERSION,
        "Runtimes": runtimes,
        "DefaultRuntime": cfg.default_runtime,
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": false,
            "Error": "",
            "RemoteManagers": null,
        },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
        "Warnings": [],
    })))
}

async fn df(
    axum::extract::State(engine): axum::extract::State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let containers = engine.containers.disk_usage().await?;
    let mut users = std::collections::HashMap::<String, i64>::new();
    for c in &containers {
        if let Some(id) = c.get("ImageID").and_then(Value::as_str) {
            *users.entry(id.to_string()).or_default() += 1;
        }
    }
    let (images, layers_size) = engine.images.disk_usage(&users).await?;
    let volumes = engine.volumes.disk_usage().await?;
    Ok(Json(json!({
        "LayersSize": layers_size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    })))
}
