//! The spec builder's tests: Docker's defaults, namespaces, capabilities, limits.

use super::caps::ALL_CAPS;
use super::*;

fn input() -> SpecInput {
    SpecInput {
        process: ProcessInput {
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            caps: capabilities(false, &[], &[]).unwrap(),
            ..Default::default()
        },
        rootfs: "/r".into(),
        hostname: "abc".into(),
        netns: Some(NetNs::New),
        cgroups_path: "/berth/abc".into(),
        ..Default::default()
    }
}

#[test]
fn host_and_joined_namespaces() {
    let mut i = input();
    i.pid_ns = NsMode::Host;
    i.ipc_ns = NsMode::Host;
    i.uts_ns = NsMode::Path("/proc/7/ns/uts".into());
    let v = serde_json::to_value(build_spec(&i).unwrap()).unwrap();
    let ns: Vec<(String, Option<String>)> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_string(),
                n["path"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert!(!ns.iter().any(|(t, _)| t == "pid" || t == "ipc"), "{ns:?}");
    assert!(ns.contains(&("uts".into(), Some("/proc/7/ns/uts".into()))));
    assert!(v.get("hostname").is_none());
    let shm = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/dev/shm")
        .unwrap();
    assert_eq!(
        shm["source"], "/dev/shm",
        "--ipc host binds the host's /dev/shm"
    );
    i.no_shm = true;
    let v = serde_json::to_value(build_spec(&i).unwrap()).unwrap();
    assert!(!v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["destination"] == "/dev/shm"));
}

#[test]
fn caps_add_drop_all() {
    let c = capabilities(false, &["NET_ADMIN".into()], &["CAP_CHOWN".into()]).unwrap();
    assert!(c.contains(&"NET_ADMIN".to_string()));
    assert!(!c.contains(&"CHOWN".to_string()));
    let c = capabilities(false, &["kill".into()], &["ALL".into()]).unwrap();
    assert_eq!(c, ["KILL"]);
    assert_eq!(
        capabilities_within(u64::MAX, false, &["ALL".into()], &[])
            .unwrap()
            .len(),
        ALL_CAPS.len()
    );
    assert!(capabilities(false, &["BOGUS".into()], &[]).is_err());
    // Capabilities outside the engine's bounding set are never granted.
    let without_sys_resource: u64 = !(1 << 24);
    let c = capabilities_within(without_sys_resource, true, &[], &[]).unwrap();
    assert!(!c.contains(&"SYS_RESOURCE".to_string()));
    assert!(c.contains(&"SYS_ADMIN".to_string()));
}

#[test]
fn spec_has_docker_defaults() {
    let v = serde_json::to_value(build_spec(&input()).unwrap()).unwrap();
    let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
    assert_eq!(caps.len(), DEFAULT_CAPS.len());
    assert!(caps.iter().any(|c| c == "CAP_NET_BIND_SERVICE"));
    let ns: Vec<_> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network"]);
    assert_eq!(
        v["linux"]["maskedPaths"].as_array().unwrap().len(),
        MASKED_PATHS.len()
    );
    let dests: Vec<_> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap().to_string())
        .collect();
    assert!(dests.contains(&"/dev/shm".to_string()));
    assert_eq!(v["linux"]["cgroupsPath"], "/berth/abc");
    assert_eq!(v["hostname"], "abc");
}

#[test]
fn host_network_and_limits() {
    let mut i = input();
    i.netns = Some(NetNs::Host);
    i.resources.memory = 64 << 20;
    i.resources.nano_cpus = 500_000_000;
    i.resources.pids_limit = Some(10);
    i.privileged = true;
    i.mounts.push(BindMount {
        source: "/h".into(),
        destination: "/c".into(),
        readonly: true,
    });
    let v = serde_json::to_value(build_spec(&i).unwrap()).unwrap();
    let ns = v["linux"]["namespaces"].as_array().unwrap();
    assert!(!ns.iter().any(|n| n["type"] == "network"));
    assert_eq!(v["linux"]["resources"]["memory"]["limit"], 64 << 20);
    assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50_000);
    assert_eq!(v["linux"]["resources"]["pids"]["limit"], 10);
    assert!(v["linux"]["maskedPaths"]
        .as_array()
        .is_none_or(|a| a.is_empty()));
    let last = v["mounts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["destination"], "/c");
    assert!(last["options"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o == "ro"));
}

#[test]
fn binds_are_mounted_parents_first_whatever_their_order() {
    let mut i = input();
    for (src, dst) in [("/h/f", "/data/w/m.txt"), ("/h", "/data"), ("/x", "/other")] {
        i.mounts.push(BindMount {
            source: src.into(),
            destination: dst.into(),
            readonly: false,
        });
    }
    let v = serde_json::to_value(build_spec(&i).unwrap()).unwrap();
    let binds: Vec<&str> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "bind" && m["source"].as_str().unwrap().starts_with('/'))
        .map(|m| m["destination"].as_str().unwrap())
        .filter(|d| ["/data", "/other", "/data/w/m.txt"].contains(d))
        .collect();
    assert_eq!(binds, ["/data", "/other", "/data/w/m.txt"]);
}
