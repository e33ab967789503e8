//! Seccomp filters for containers: Berth's default profile, `--security-opt seccomp=unconfined`,
//! and custom profiles in Docker's JSON format (`--security-opt seccomp=profile.json`; the CLI
//! sends the file's content).
//!
//! The default profile allows every system call except the ones a container has no business
//! making without the matching capability: kernel keyrings, modules, reboot/kexec, clocks,
//! mounts and namespace creation, BPF, perf, userfaultfd, io_uring, swap, accounting, raw I/O
//! ports, obsolete calls. Those fail with `EPERM` (like Docker's default profile, which is an
//! allow-list with the same effect for them); `clone3` fails with `ENOSYS` so libc falls back
//! to `clone`, whose namespace flags can be filtered. A capability granted with `--cap-add`
//! re-enables its calls. `--privileged` runs without a filter, as with Docker.
//!
//! A deny-list keeps the filter short (~100 rules), so runc compiles and loads it in well under
//! a millisecond, and new harmless system calls work without a profile update.

use std::collections::BTreeSet;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use serde::Deserialize;

use crate::{EngineError, Result};

const EPERM: u32 = libc::EPERM as u32;
const ENOSYS: u32 = libc::ENOSYS as u32;

/// Namespace flags of `clone`/`unshare` that need `CAP_SYS_ADMIN`:
/// NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
const NAMESPACE_FLAGS: [u64; 7] = [
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// CLONE_NEWTIME: `unshare` only (in `clone`'s flags that bit belongs to the exit signal).
const CLONE_NEWTIME: u64 = 0x0000_0080;

/// System calls denied unless the container holds one of the listed capabilities
/// (an empty list: denied whatever the capabilities).
const DENIED: &[(&[&str], &[&str])] = &[
    (
        &[
            "add_key",
            "keyctl",
            "request_key",
            "userfaultfd",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "vm86",
            "vm86old",
            "uselib",
            "nfsservctl",
            "_sysctl",
            "create_module",
            "get_kernel_syms",
            "query_module",
        ],
        &[],
    ),
    (
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "setns",
            "swapon",
            "swapoff",
            "quotactl",
            "quotactl_fd",
            "lookup_dcookie",
            "fanotify_init",
            "clone3",
        ],
        &["SYS_ADMIN"],
    ),
    (&["bpf"], &["SYS_ADMIN", "BPF"]),
    (&["perf_event_open"], &["SYS_ADMIN", "PERFMON"]),
    (
        &["init_module", "finit_module", "delete_module"],
        &["SYS_MODULE"],
    ),
    (&["kexec_load", "kexec_file_load", "reboot"], &["SYS_BOOT"]),
    (
        &["settimeofday", "stime", "clock_settime", "clock_adjtime"],
        &["SYS_TIME"],
    ),
    (&["acct"], &["SYS_PACCT"]),
    (&["iopl", "ioperm"], &["SYS_RAWIO"]),
    (&["syslog"], &["SYSLOG"]),
    (&["open_by_handle_at"], &["DAC_READ_SEARCH"]),
    (
        &[
            "kcmp",
            "process_vm_readv",
            "process_vm_writev",
            "pidfd_getfd",
        ],
        &["SYS_PTRACE"],
    ),
    (
        &[
            "get_mempolicy",
            "set_mempolicy",
            "mbind",
            "move_pages",
            "migrate_pages",
        ],
        &["SYS_NICE"],
    ),
    (&["vhangup"], &["SYS_TTY_CONFIG"]),
];

/// The `seccomp=` value of `--security-opt`, if any.
fn seccomp_opt(security_opt: &[String]) -> Option<&str> {
    security_opt.iter().find_map(|o| {
        o.strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"))
    })
}

/// Checks a container's `seccomp=` security option at create time.
pub fn validate(security_opt: &[String]) -> Result<()> {
    match seccomp_opt(security_opt) {
        None | Some("unconfined") | Some("builtin") => Ok(()),
        Some(json) => parse_profile(json).map(|_| ()),
    }
}

/// The filter for a container with capabilities `caps` (names without `CAP_`), or `None` for
/// none (privileged or `seccomp=unconfined`).
pub fn for_container(
    privileged: bool,
    security_opt: &[String],
    caps: &[String],
) -> Result<Option<LinuxSeccomp>> {
    let held: BTreeSet<&str> = caps.iter().map(String::as_str).collect();
    match seccomp_opt(security_opt) {
        Some("unconfined") => Ok(None),
        None | Some("builtin") if privileged => Ok(None),
        None | Some("builtin") => default_profile(&held).map(Some),
        Some(json) => parse_profile(json)?.to_oci(&held).map(Some),
    }
}

fn oci_err(e: oci_spec::OciSpecError) -> EngineError {
    EngineError::internal(format!("seccomp profile: {e}"))
}

fn native_arches() -> Vec<Arch> {
    if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    }
}

fn syscall(names: Vec<String>, errno: u32, args: Vec<LinuxSeccompArg>) -> Result<LinuxSyscall> {
    let mut b = LinuxSyscallBuilder::default()
        .names(names)
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(errno);
    if !args.is_empty() {
        b = b.args(args);
    }
    b.build().map_err(oci_err)
}

/// Berth's default profile for a container holding `held`.
fn default_profile(held: &BTreeSet<&str>) -> Result<LinuxSeccomp> {
    let mut rules = Vec::new();
    let unlocked = |caps: &[&str]| caps.iter().any(|c| held.contains(c));
    for (names, caps) in DENIED {
        if unlocked(caps) {
            continue;
        }
        let (nosys, perm): (Vec<String>, Vec<String>) = names
            .iter()
            .map(|n| n.to_string())
            .partition(|n| n == "clone3");
        for (names, errno) in [(perm, EPERM), (nosys, ENOSYS)] {
            if !names.is_empty() {
                rules.push(syscall(names, errno, vec![])?);
            }
        }
    }
    if !unlocked(&["SYS_ADMIN"]) {
        // One rule per flag: a rule's argument conditions are ANDed, so "any flag set" is
        // several rules of one masked comparison each. clone's flags are argument 0 on
        // x86 and arm alike; unshare takes only the flags.
        let flag_set = |flag: u64| {
            LinuxSeccompArgBuilder::default()
                .index(0usize)
                .value(flag)
                .value_two(flag)
                .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                .build()
                .map_err(oci_err)
        };
        for flag in NAMESPACE_FLAGS {
            let names = vec!["clone".into(), "unshare".into()];
            rules.push(syscall(names, EPERM, vec![flag_set(flag)?])?);
        }
        rules.push(syscall(
            vec!["unshare".into()],
            EPERM,
            vec![flag_set(CLONE_NEWTIME)?],
        )?);
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(native_arches())
        .syscalls(rules)
        .build()
        .map_err(oci_err)
}

/// A profile in Docker's format (moby's `seccomp.Seccomp`, the format of `default.json`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<Arch>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<DockerSyscall>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Vec<Arch>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerSyscall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

/// `includes`/`excludes` of a Docker profile rule. `minKernel` is not checked: Berth's
/// kernels are all newer than the versions Docker's profile names.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

fn parse_profile(json: &str) -> Result<DockerProfile> {
    serde_json::from_str(json)
        .map_err(|e| EngineError::invalid(format!("decoding seccomp profile failed: {e}")))
}

fn arch_name() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

impl DockerProfile {
    fn to_oci(&self, held: &BTreeSet<&str>) -> Result<LinuxSeccomp> {
        let has = |c: &String| held.contains(c.trim_start_matches("CAP_"));
        let arch = arch_name();
        let mut rules = Vec::new();
        for s in &self.syscalls {
            let inc = &s.includes;
            let exc = &s.excludes;
            if (!inc.caps.is_empty() && !inc.caps.iter().all(has))
                || (!inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch))
                || (!exc.caps.is_empty() && exc.caps.iter().any(has))
                || exc.arches.iter().any(|a| a == arch)
            {
                continue;
            }
            let names: Vec<String> = s.name.iter().chain(s.names.iter()).cloned().collect();
            if names.is_empty() {
                continue;
            }
            let mut b = LinuxSyscallBuilder::default().names(names).action(s.action);
            if let Some(e) = s.errno_ret {
                b = b.errno_ret(e);
            }
            if let Some(a) = &s.args {
                b = b.args(a.clone());
            }
            rules.push(b.build().map_err(oci_err)?);
        }
        let mut arches: Vec<Arch> = self.architectures.clone();
        for m in &self.arch_map {
            arches.push(m.architecture);
            arches.extend(m.sub_architectures.iter().copied());
        }
        if arches.is_empty() {
            arches = native_arches();
        }
        let mut b = LinuxSeccompBuilder::default()
            .default_action(self.default_action)
            .architectures(arches)
            .syscalls(rules);
        if let Some(e) = self.default_errno_ret {
            b = b.default_errno_ret(e);
        }
        b.build().map_err(oci_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    fn denied(p: &LinuxSeccomp, name: &str) -> bool {
        p.syscalls()
            .iter()
            .flatten()
            .any(|s| s.names().iter().any(|n| n == name) && s.args().is_none())
    }

    #[test]
    fn default_profile_denies_and_cap_add_unlocks() {
        let p = for_container(false, &[], &caps(&["CHOWN", "NET_RAW"]))
            .unwrap()
            .unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
        for n in ["keyctl", "mount", "bpf", "reboot", "clone3", "init_module"] {
            assert!(denied(&p, n), "{n} must be denied");
        }
        let clone_rules = p
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names().iter().any(|n| n == "unshare"))
            .count();
        assert_eq!(clone_rules, NAMESPACE_FLAGS.len() + 1);

        let admin = for_container(false, &[], &caps(&["SYS_ADMIN"]))
            .unwrap()
            .unwrap();
        assert!(!denied(&admin, "mount"));
        assert!(!denied(&admin, "bpf"));
        assert!(denied(&admin, "keyctl"), "keyrings stay denied");
        assert!(!admin
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.names().iter().any(|n| n == "unshare")));
    }

    #[test]
    fn privileged_and_unconfined_have_no_filter() {
        assert!(for_container(true, &[], &[]).unwrap().is_none());
        let unconfined = caps(&["seccomp=unconfined"]);
        assert!(for_container(false, &unconfined, &[]).unwrap().is_none());
    }

    #[test]
    fn docker_format_profile_is_translated() {
        let json = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
            ]
        }"#;
        let opt = vec![format!("seccomp={json}")];
        validate(&opt).unwrap();
        let p = for_container(false, &opt, &caps(&["CHOWN"]))
            .unwrap()
            .unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        let names: Vec<&String> = p
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names())
            .collect();
        assert!(names.iter().any(|n| *n == "read"));
        assert!(!names.iter().any(|n| *n == "mount"), "needs CAP_SYS_ADMIN");
        assert_eq!(p.architectures().as_ref().unwrap().len(), 2);
        let err = validate(&caps(&["seccomp={not json"])).unwrap_err();
        assert!(err.message().contains("decoding seccomp profile failed"));
    }
}
