//! The default seccomp profile seen from inside a container: a static probe
//! (`sandbox/probe.c`, built here with the system's C compiler) makes the system calls Docker's
//! default profile denies, on the x86_64, i386 (`int 0x80`) and x32 ABIs, and a few it allows.
//! Its arguments make the kernel answer something other than EPERM without a filter, so an
//! EPERM under the default profile is the filter's doing; `seccomp=unconfined` shows it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_test_support::{repo_root, Engine};

const NET: &str = "--network=none";

/// Calls the default profile denies with EPERM (x86_64 numbers and the other ABIs).
const DENIED: &[&str] = &[
    "keyctl",
    "add_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "unshare_userns",
    "clone_userns",
    "mount",
    "kexec_load",
    "personality_exec",
    "socket_vsock",
];

/// Calls every profile allows.
const ALLOWED: &[&str] = &["clone_plain", "personality_query", "socket_inet"];

/// Denied calls that succeed or fail otherwise than EPERM without a filter, for the same
/// capabilities: the filter is what denies them.
const FILTER_ONLY: &[&str] = &[
    "keyctl",
    "bpf",
    "perf_event_open",
    "io_uring_setup",
    "unshare_userns",
    "clone_userns",
    "clone3_userns",
    "mount",
    "personality_exec",
];

/// Builds the probe into `dir` with the system's C compiler, statically linked.
fn build_probe(dir: &Path) -> PathBuf {
    let out = dir.join("probe");
    let src = repo_root().join("tests/cli/sandbox/probe.c");
    let st = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("cc (gcc and libc6-dev, installed by tests/fixtures/deps.sh)");
    assert!(st.success(), "building {}", src.display());
    out
}

/// Runs the probe in a busybox container with `extra` flags: call name -> result.
fn probe(e: &Engine, bin: &Path, extra: &[&str]) -> BTreeMap<String, String> {
    let mount = format!("{}:/probe:ro", bin.display());
    let mut args = vec!["run", "--rm", NET, "-v", &mount];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "/probe"]);
    let out = e.docker_ok(&args);
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get<'a>(r: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    r.get(name).map(String::as_str).unwrap_or("missing")
}

#[test]
fn default_profile_denies_what_docker_denies() {
    let e = Engine::start();
    let bin = build_probe(e.scratch());
    let confined = probe(&e, &bin, &[]);
    let free = probe(&e, &bin, &["--security-opt", "seccomp=unconfined"]);
    for n in DENIED {
        assert_eq!(get(&confined, n), "EPERM", "{n}: {confined:?}");
    }
    assert_eq!(get(&confined, "clone3_userns"), "ENOSYS", "{confined:?}");
    for n in ALLOWED {
        assert_eq!(get(&confined, n), "ok", "{n}: {confined:?}");
        assert_eq!(get(&free, n), "ok", "{n}: {free:?}");
    }
    for n in FILTER_ONLY {
        assert_ne!(get(&free, n), "EPERM", "{n} unconfined: {free:?}");
        assert_ne!(get(&free, n), get(&confined, n), "{n}");
    }
    if cfg!(target_arch = "x86_64") {
        // The i386 ABI is filtered by the same allow-list (when the kernel runs it at all).
        assert_eq!(get(&free, "i386_getpid"), get(&confined, "i386_getpid"));
        if get(&free, "i386_getpid") == "ok" {
            assert_eq!(get(&free, "i386_keyctl"), "ok", "{free:?}");
            assert_eq!(get(&confined, "i386_keyctl"), "EPERM", "{confined:?}");
            assert_eq!(
                get(&confined, "i386_unshare_userns"),
                "EPERM",
                "{confined:?}"
            );
        }
        // x32: in the filter's architectures, so its denied calls get EPERM too.
        assert_eq!(get(&confined, "x32_keyctl"), "EPERM", "{confined:?}");
        assert_eq!(get(&free, "x32_getpid"), get(&confined, "x32_getpid"));
    }
}

#[test]
fn cap_add_and_privileged_lift_the_filter() {
    let e = Engine::start();
    let bin = build_probe(e.scratch());
    // CAP_SYS_ADMIN allows namespaces and mount (the missing directory then answers ENOENT),
    // while the calls Docker denies to every container stay denied.
    let admin = probe(&e, &bin, &["--cap-add", "SYS_ADMIN"]);
    for n in ["unshare_userns", "clone_userns", "clone3_userns"] {
        assert_eq!(get(&admin, n), "ok", "{n}: {admin:?}");
    }
    assert_eq!(get(&admin, "mount"), "ENOENT", "{admin:?}");
    for n in [
        "keyctl",
        "userfaultfd",
        "io_uring_setup",
        "kexec_load",
        "socket_vsock",
    ] {
        assert_eq!(get(&admin, n), "EPERM", "{n}: {admin:?}");
    }
    // --privileged runs without a filter.
    let privileged = probe(&e, &bin, &["--privileged"]);
    for n in [
        "keyctl",
        "unshare_userns",
        "io_uring_setup",
        "personality_exec",
    ] {
        assert_ne!(get(&privileged, n), "EPERM", "{n}: {privileged:?}");
    }
}
