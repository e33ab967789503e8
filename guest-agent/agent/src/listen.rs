//! API listeners named by `-H`: `unix:///path` (mode 0660).

use std::path::PathBuf;

use anyhow::{bail, Context};
use axum::Router;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Running listeners; closing waits for the accept loops and removes unix sockets.
pub(crate) struct Listeners {
    tasks: JoinSet<()>,
    sockets: Vec<PathBuf>,
}

impl Listeners {
    pub(crate) async fn close(mut self) {
        while self.tasks.join_next().await.is_some() {}
        for s in &self.sockets {
            let _ = std::fs::remove_file(s);
        }
    }
}

pub(crate) async fn start(
    hosts: &[String],
    app: Router,
    cancel: CancellationToken,
) -> anyhow::Result<Listeners> {
    let mut l = Listeners {
        tasks: JoinSet::new(),
        sockets: vec![],
    };
    for host in hosts {
        if let Some(path) = host.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            let listener = berth_server::serve::bind_unix(&path, 0o660)
                .with_context(|| format!("failed to listen on {}", path.display()))?;
            l.tasks.spawn(berth_server::serve::serve_unix(
                app.clone(),
                listener,
                cancel.clone(),
            ));
            l.sockets.push(path);
        } else {
            bail!("unsupported host {host}: use unix:///path");
        }
    }
    Ok(l)
}
