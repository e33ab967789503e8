//! `User` (`name`, `uid`, `name:group`, `uid:gid`) resolved against the container's
//! `/etc/passwd` and `/etc/group`.

use std::path::Path;

use crate::{EngineError, Result};

/// A resolved user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

fn read(root: &Path, file: &str) -> String {
    std::fs::read_to_string(root.join(file)).unwrap_or_default()
}

/// Resolves `spec` with the files under `root` (the container's rootfs), adding the
/// `--group-add` groups (names or ids).
pub fn resolve(root: &Path, spec: &str, group_add: &[String]) -> Result<ResolvedUser> {
    let group = read(root, "etc/group");
    let mut u = resolve_with(&read(root, "etc/passwd"), &group, spec)?;
    for g in extra_groups(&group, group_add)? {
        if !u.additional_gids.contains(&g) {
            u.additional_gids.push(g);
        }
    }
    Ok(u)
}

/// `--group-add` values as gids: numbers as they are, names looked up in `group`.
fn extra_groups(group: &str, names: &[String]) -> Result<Vec<u32>> {
    names
        .iter()
        .map(|n| {
            if let Ok(gid) = n.parse::<u32>() {
                return Ok(gid);
            }
            group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == n)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    EngineError::invalid(format!(
                        "Unable to find group {n}: no matching entries in group file"
                    ))
                })
        })
        .collect()
}

pub fn resolve_with(passwd: &str, group: &str, spec: &str) -> Result<ResolvedUser> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let mut out = ResolvedUser {
        home: "/".into(),
        ..Default::default()
    };
    let user = if user.is_empty() { "0" } else { user };
    let found = entries
        .iter()
        .find(|f| f[0] == user || (user.parse::<u32>().is_ok() && f[2] == user));
    match (found, user.parse::<u32>()) {
        (Some(f), _) => {
            out.uid = f[2].parse().unwrap_or(0);
            out.gid = f[3].parse().unwrap_or(0);
            if let Some(h) = f.get(5) {
                out.home = (*h).to_string();
            }
        }
        (None, Ok(uid)) => out.uid = uid,
        (None, Err(_)) => {
            return Err(EngineError::invalid(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )))
        }
    }
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    if let Some(g) = grp {
        match (groups.iter().find(|f| f[0] == g), g.parse::<u32>()) {
            (Some(f), _) => out.gid = f[2].parse().unwrap_or(0),
            (None, Ok(gid)) => out.gid = gid,
            (None, Err(_)) => {
                return Err(EngineError::invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                )))
            }
        }
    }
    // Like dockerd (through containerd): the primary group first, then, unless the group was
    // given explicitly, the groups that list the user as a member.
    out.additional_gids.push(out.gid);
    if let (Some(f), None) = (found, grp) {
        let name = f[0];
        for g in &groups {
            let members = g.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name) {
                if let Ok(gid) = g[2].parse::<u32>() {
                    if gid != out.gid {
                        out.additional_gids.push(gid);
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:nobody\nnogroup:x:65534:\n";

    #[test]
    fn users_resolve() {
        assert_eq!(resolve_with(PASSWD, GROUP, "").unwrap().home, "/root");
        let n = resolve_with(PASSWD, GROUP, "nobody").unwrap();
        assert_eq!(
            (n.uid, n.gid, n.additional_gids.clone()),
            (65534, 65534, vec![65534, 10])
        );
        let n = resolve_with(PASSWD, GROUP, "nobody:nogroup").unwrap();
        assert_eq!(
            n.additional_gids,
            vec![65534],
            "explicit group: no memberships"
        );
        assert_eq!(
            resolve_with(PASSWD, GROUP, "").unwrap().additional_gids,
            vec![0]
        );
        let n = resolve_with(PASSWD, GROUP, "1000:wheel").unwrap();
        assert_eq!((n.uid, n.gid), (1000, 10));
        assert!(resolve_with(PASSWD, GROUP, "ghost").is_err());
        let extra = extra_groups(GROUP, &["wheel".into(), "123".into()]).unwrap();
        assert_eq!(extra, vec![10, 123]);
        assert!(extra_groups(GROUP, &["nosuch".into()]).is_err());
    }
}
