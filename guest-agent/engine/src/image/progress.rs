//! Pull progress lines as dockerd writes them, including its progress-bar text.

use berth_docker_api::progress::{ProgressDetail, ProgressMessage};
use tokio::sync::mpsc::UnboundedSender;

/// Where progress goes; sending never blocks, and a gone client does not stop the pull.
#[derive(Clone)]
pub struct Progress(Option<UnboundedSender<ProgressMessage>>);

impl Progress {
    pub fn new(tx: UnboundedSender<ProgressMessage>) -> Self {
        Self(Some(tx))
    }

    /// Progress nobody reads.
    pub fn discard() -> Self {
        Self(None)
    }

    pub fn send(&self, m: ProgressMessage) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(m);
        }
    }

    pub fn status(&self, s: impl Into<String>) {
        self.send(ProgressMessage::status(s));
    }

    pub fn with_id(&self, s: impl Into<String>, id: &str) {
        self.send(ProgressMessage::with_id(s, id));
    }

    /// A `Downloading`/`Extracting` line with counters and dockerd's bar.
    pub fn bytes(&self, status: &str, id: &str, current: u64, total: u64) {
        self.send(ProgressMessage {
            status: Some(status.into()),
            progress_detail: Some(ProgressDetail {
                current: Some(i64::try_from(current).unwrap_or(i64::MAX)),
                total: Some(i64::try_from(total).unwrap_or(i64::MAX)),
            }),
            progress: Some(bar(current, total)),
            id: Some(id.into()),
            ..ProgressMessage::default()
        });
    }
}

/// go-units `HumanSize`: decimal units, four significant digits (`2.15MB`, `512B`).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // %.4g: four significant digits, trailing zeros dropped.
    let digits_before = if v < 1.0 {
        1
    } else {
        #[allow(clippy::cast_possible_truncation)]
        let d = v.log10().floor() as i32 + 1;
        d
    };
    let decimals = usize::try_from((4 - digits_before).max(0)).unwrap_or(0);
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// moby's `JSONProgress.String()` at the daemon's width: `[====>     ]  1.2MB/2.4MB`.
pub fn bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let pct = ((current as f64 / total as f64 * 100.0) as u64 / 2).min(50);
    let filled = usize::try_from(pct).unwrap_or(50);
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    format!(
        "[{}>{}] {numbers}",
        "=".repeat(filled),
        " ".repeat(50 - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_match_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2_150_000), "2.15MB");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(human_size(123_456_789), "123.5MB");
        assert_eq!(human_size(4_261_550), "4.262MB");
    }

    #[test]
    fn bar_has_dockers_shape() {
        let b = bar(1_075_000, 2_150_000);
        assert_eq!(
            b,
            format!("[{}>{}]  1.075MB/2.15MB", "=".repeat(25), " ".repeat(25))
        );
        assert!(bar(10, 10).starts_with(&format!("[{}>]", "=".repeat(50))));
    }
}
