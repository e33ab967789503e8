//! `--pid`, `--ipc` and `--uts`: checked at create, resolved at start.

use crate::runtime::spec::NsMode;
use crate::{EngineError, Result};

use super::Svc;

/// The namespaces `--pid`, `--ipc` and `--uts` choose.
#[derive(Clone, Copy)]
pub(super) enum NsKind {
    Pid,
    Ipc,
    Uts,
}

impl NsKind {
    fn proc_name(self) -> &'static str {
        match self {
            NsKind::Pid => "pid",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
        }
    }
}

/// Checks a `--pid`/`--ipc`/`--uts` value's form (at create), with dockerd's texts.
pub(super) fn check_ns_mode(kind: NsKind, mode: &str) -> Result<()> {
    let ok = match kind {
        NsKind::Pid => mode.is_empty() || mode == "host" || joined(mode).is_some(),
        NsKind::Ipc => {
            matches!(mode, "" | "private" | "shareable" | "host" | "none") || joined(mode).is_some()
        }
        NsKind::Uts => mode.is_empty() || mode == "host",
    };
    if ok {
        Ok(())
    } else {
        let k = kind.proc_name().to_ascii_uppercase();
        Err(EngineError::invalid(format!("invalid {k} mode: {mode}")))
    }
}

/// The container named by `container:<name>`, if that is the form.
fn joined(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:").filter(|n| !n.is_empty())
}

impl Svc {
    /// Resolves a checked `--pid`/`--ipc`/`--uts` value; `container:<name>` joins that running
    /// container's namespace.
    pub(super) fn ns_mode(&self, kind: NsKind, mode: &str) -> Result<NsMode> {
        check_ns_mode(kind, mode)?;
        if mode == "host" {
            return Ok(NsMode::Host);
        }
        let Some(name) = joined(mode) else {
            return Ok(NsMode::New);
        };
        let other = self.get(name)?;
        let st = other.snapshot().state.state;
        if !st.running || st.pid <= 0 {
            let k = kind.proc_name().to_ascii_uppercase();
            return Err(EngineError::conflict(format!(
                "cannot join {k} of a non running container: {}",
                other.id
            )));
        }
        Ok(NsMode::Path(
            format!("/proc/{}/ns/{}", st.pid, kind.proc_name()).into(),
        ))
    }
}
