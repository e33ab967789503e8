//! The app's tracing subscriber, set up once: `berth-app.log` in the app log dir (the previous
//! run's kept as `.1`) and stderr. Level from `BERTH_APP_LOG` (default `info`).

use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::EnvFilter;

pub(crate) fn init(log_dir: &Path) {
    let filter =
        EnvFilter::try_from_env("BERTH_APP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let file = std::fs::create_dir_all(log_dir).ok().and_then(|()| {
        let path = log_dir.join("berth-app.log");
        let _ = std::fs::rename(&path, path.with_extension("log.1"));
        std::fs::File::create(&path).ok()
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let r = match file {
        Some(f) => builder
            .with_writer(Mutex::new(f).and(std::io::stderr))
            .try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    if r.is_err() {
        eprintln!("berth-app: a tracing subscriber was already set");
    }
}
