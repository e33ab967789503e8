//! `docker top` and `docker resize`: questions and requests to a running container.

use super::{not_running, Svc};
use crate::{EngineError, Result};

impl Svc {
    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, key: &str, height: u16, width: u16) -> Result<()> {
        let c = self.get(key)?;
        if !c.snapshot().state.state.running {
            return Err(not_running(&c.id));
        }
        self.shim(&c.id).resize(height, width).await?;
        self.publish(
            &c,
            "resize",
            &[("height", height.to_string()), ("width", width.to_string())],
        );
        Ok(())
    }

    /// `GET /containers/{id}/top`: the host's `ps` filtered to the container's pids.
    pub async fn top(&self, key: &str, ps_args: &str) -> Result<serde_json::Value> {
        let c = self.get(key)?;
        if !c.snapshot().state.state.running {
            return Err(not_running(&c.id));
        }
        let rt = self.runtime_for(&c.snapshot())?;
        let id = c.id.clone();
        let pids = tokio::task::spawn_blocking(move || rt.ps(&id))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))??;
        let args: Vec<String> = if ps_args.is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.split_whitespace().map(String::from).collect()
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| EngineError::internal(format!("ps: {e}")))?;
        if !out.status.success() {
            return Err(EngineError::internal(format!(
                "Error running ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

/// Keeps the header and the rows of `ps` output whose PID column is in `pids`.
pub fn parse_ps(out: &str, pids: &[i32]) -> Result<serde_json::Value> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| EngineError::invalid("Couldn't find PID field in ps output"))?;
    let mut procs = vec![];
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(serde_json::json!({"Titles": titles, "Processes": procs}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_filtered() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:00 ? 00:00:00 sleep 100\n";
        let v = parse_ps(out, &[42]).unwrap();
        assert_eq!(v["Processes"][0][1], "42");
        assert_eq!(v["Processes"][0][7], "sleep 100");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 1);
    }
}
