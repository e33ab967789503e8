//! What the commands share (Tauri managed state): the engine client, the settings, the
//! stream registry and Berth's state directory.

use std::path::PathBuf;
use std::sync::RwLock;

use berth_host::StateDir;
use tokio::sync::Notify;

use crate::engine::{self, socket::SocketInputs, Engine};
use crate::error::Result;
use crate::settings::AppSettings;
use crate::streams::Streams;

pub struct AppState {
    engine: RwLock<Engine>,
    settings: RwLock<AppSettings>,
    pub config_dir: PathBuf,
    pub berth: StateDir,
    pub streams: Streams,
    /// Woken when the engine socket changes, so the event watcher reconnects at once.
    pub reconnect: Notify,
}

impl AppState {
    pub fn new(config_dir: PathBuf, berth: StateDir) -> Self {
        let settings = AppSettings::load(&config_dir);
        let engine = Engine::new(choose_socket(&settings, &berth));
        tracing::info!(socket = %engine.socket().path.display(), source = ?engine.socket().source, "engine socket");
        Self {
            engine: RwLock::new(engine),
            settings: RwLock::new(settings),
            config_dir,
            berth,
            streams: Streams::default(),
            reconnect: Notify::new(),
        }
    }

    /// The current engine client (a cheap clone).
    pub fn engine(&self) -> Engine {
        self.engine
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The engine socket as a `berth_host` endpoint (for what the app asks through
    /// `berth_host`: `system df`, the doctor's bundle, push progress).
    pub fn host_endpoint(&self) -> berth_host::endpoint::Endpoint {
        let path = self.engine().socket().path.clone();
        berth_host::endpoint::Endpoint::parse(&path.display().to_string())
            .unwrap_or(berth_host::endpoint::Endpoint::Unix(path))
    }

    pub fn settings(&self) -> AppSettings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Saves new settings and reconnects when they change the socket.
    pub fn set_settings(&self, s: AppSettings) -> Result<()> {
        s.save(&self.config_dir)?;
        let engine = Engine::new(choose_socket(&s, &self.berth));
        let changed = engine.socket() != self.engine().socket();
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = s;
        if changed {
            tracing::info!(socket = %engine.socket().path.display(), "engine socket changed");
            *self.engine.write().unwrap_or_else(|p| p.into_inner()) = engine;
            self.reconnect.notify_one();
        }
        Ok(())
    }
}

/// The socket for these settings and the process environment.
fn choose_socket(s: &AppSettings, berth: &StateDir) -> engine::SocketChoice {
    let berth_env = std::env::var("BERTH_DOCKER_HOST").ok();
    let docker_env = std::env::var("DOCKER_HOST").ok();
    engine::resolve(
        &SocketInputs {
            berth_docker_host: berth_env.as_deref(),
            saved: s.docker_host.as_deref(),
            docker_host: docker_env.as_deref(),
        },
        &berth_socket(berth),
    )
}

/// Berth's own endpoint as a path: the unix socket, or on Windows the pipe's name.
fn berth_socket(berth: &StateDir) -> PathBuf {
    match berth.docker_endpoint() {
        berth_host::endpoint::Endpoint::Unix(p) => p,
        berth_host::endpoint::Endpoint::Pipe(name) => PathBuf::from(name),
    }
}
