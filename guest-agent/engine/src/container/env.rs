//! A container process's environment: `KEY=value` lists merged by key, in dockerd's order
//! (shared by a container's init and `docker exec`).

/// Merges `KEY=value` lists; later entries override earlier ones with the same key.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for e in over {
        let key = e.split('=').next().unwrap_or("");
        if let Some(pos) = out
            .iter()
            .position(|x| x.split('=').next().unwrap_or("") == key)
        {
            out[pos] = e.clone();
        } else {
            out.push(e.clone());
        }
    }
    out
}

/// A container process's environment in dockerd's order: `HOSTNAME` (none on the host's
/// network), the link variables, then the container's own `env` over them.
pub fn container_env(hostname: Option<&str>, links: Vec<String>, own: &[String]) -> Vec<String> {
    let mut base = links;
    if let Some(h) = hostname {
        base.insert(0, format!("HOSTNAME={h}"));
    }
    if base.is_empty() {
        return own.to_vec();
    }
    merge_env(&base, own)
}

/// The variables every container process gets unless set: `TERM=xterm` with a terminal, and
/// `HOME` of its user.
pub fn add_process_defaults(env: &mut Vec<String>, tty: bool, home: &str) {
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merges_by_key() {
        let e = merge_env(
            &["PATH=/bin".into(), "A=1".into()],
            &["A=2".into(), "B=3".into()],
        );
        assert_eq!(e, ["PATH=/bin", "A=2", "B=3"]);
    }
}
