//! berth-engine: the container engine behind Berth's Docker API, free of any transport.
//!
//! Composition: [`Engine::open`] builds the services in dependency order (images and networks
//! first, then volumes, then containers, which use all three) and restores state from the data
//! root, so a restarted engine finds its images, containers and logs again.

pub mod build;
pub mod compression;
pub mod config;
pub mod container;
pub mod error;
pub mod events;
pub mod fsutil;
pub mod id;
pub mod image;
pub mod mount;
pub mod network;
pub mod registry;
pub mod runtime;
pub mod shim;
pub mod stream;
pub mod volume;

use std::sync::Arc;

pub use config::EngineConfig;
pub use error::{EngineError, ErrorKind, Result};
pub use events::EventBus;

/// Engine version reported by `/version` and `/info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The engine: every service, shared by all API listeners.
pub struct Engine {
    pub config: Arc<EngineConfig>,
    pub events: EventBus,
    pub images: Arc<image::ImageService>,
    pub networks: Arc<network::NetworkService>,
    pub volumes: Arc<volume::VolumeService>,
    pub containers: Arc<container::ContainerService>,
}

/// The engine's seams to the OS, chosen once when it opens: the real ones by default,
/// fakes that record what they are asked in tests (`berth_test_support::fake`).
#[derive(Clone)]
pub struct Seams {
    /// The OCI runtime back-ends the engine calls (the shims use the real ones).
    pub runtimes: Arc<dyn runtime::Runtimes>,
    /// The per-container shims that run the containers ([`shim::seam`]).
    pub shims: Arc<dyn shim::Shims>,
    /// The mount calls the engine makes in its own process ([`mount`]).
    pub mounter: Arc<dyn mount::Mounter>,
    /// The host network: bridges, namespaces, veths, NAT, published ports ([`network::driver`]).
    pub net: Arc<dyn network::driver::NetDriver>,
}

impl Default for Seams {
    fn default() -> Self {
        Self {
            runtimes: Arc::new(runtime::OciRuntimes),
            shims: Arc::new(shim::HostShims),
            mounter: Arc::new(mount::HostMounter),
            net: Arc::new(network::HostNet::default()),
        }
    }
}

impl Engine {
    /// Opens (or creates) the engine state under `config.data_root` and restores it.
    pub async fn open(config: EngineConfig) -> Result<Arc<Self>> {
        Self::open_with(config, Seams::default()).await
    }

    /// [`Engine::open`] with the given seams.
    pub async fn open_with(config: EngineConfig, seams: Seams) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&config.data_root)?;
        std::fs::create_dir_all(&config.exec_root)?;
        build::clean_leftovers(&config.data_root);
        let config = Arc::new(config);
        let events = EventBus::new();
        let images = Arc::new(image::ImageService::open(config.clone(), events.clone()).await?);
        let networks = Arc::new(
            network::NetworkService::open(config.clone(), events.clone(), seams.net.clone())
                .await?,
        );
        let volumes = Arc::new(volume::VolumeService::open(config.clone(), events.clone()).await?);
        let containers = Arc::new(
            container::ContainerService::open(
                config.clone(),
                events.clone(),
                images.clone(),
                networks.clone(),
                volumes.clone(),
                seams,
            )
            .await?,
        );
        Ok(Arc::new(Self {
            config,
            events,
            images,
            networks,
            volumes,
            containers,
        }))
    }

    /// Stops background work before the process exits. Containers keep running: their shims
    /// hold them.
    pub async fn shutdown(&self) {
        self.containers
            .shutdown(std::time::Duration::from_secs(5))
            .await;
        self.networks.shutdown().await;
    }
}
