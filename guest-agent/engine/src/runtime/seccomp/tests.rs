use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall};

use super::*;

fn target(caps: &[&str]) -> Target {
    Target {
        arch: "amd64",
        caps: caps.iter().map(|s| s.to_string()).collect(),
        kernel: Some(KernelVersion { major: 6, minor: 1 }),
    }
}

/// Docker's default capabilities (without `CAP_`).
const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

fn default_for(t: &Target) -> LinuxSeccomp {
    for_target(false, &[], t).unwrap().unwrap()
}

fn rules<'a>(p: &'a LinuxSeccomp, name: &'a str) -> impl Iterator<Item = &'a LinuxSyscall> {
    p.syscalls()
        .iter()
        .flatten()
        .filter(move |s| s.names().iter().any(|n| n == name))
}

/// Allowed whatever its arguments.
fn allowed(p: &LinuxSeccomp, name: &str) -> bool {
    rules(p, name).any(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none())
}

fn opt(s: &str) -> Vec<String> {
    vec![s.to_string()]
}

#[test]
fn default_profile_is_an_allow_list_on_three_x86_abis() {
    let p = default_for(&target(DEFAULT_CAPS));
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(p.default_errno_ret(), Some(libc::EPERM as u32));
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
    );
    for n in [
        "read",
        "openat",
        "futex",
        "execve",
        "arch_prctl",
        "modify_ldt",
        "chroot",
        "rseq",
    ] {
        assert!(allowed(&p, n), "{n} must be allowed");
    }
    for n in [
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "mount",
        "umount2",
        "unshare",
        "setns",
        "kexec_load",
        "kexec_file_load",
        "reboot",
        "init_module",
        "open_by_handle_at",
        "iopl",
        "ptrace_x",
        "set_tls",
        "clock_settime",
        "syslog",
        "acct",
        "swapon",
        "pivot_root",
    ] {
        assert_eq!(
            rules(&p, n).count(),
            0,
            "{n} must fall to the default action"
        );
    }
}

#[test]
fn argument_filters_match_dockers() {
    let p = default_for(&target(DEFAULT_CAPS));
    let socket: Vec<_> = rules(&p, "socket").collect();
    assert_eq!(socket.len(), 1);
    let a = socket[0].args().as_ref().unwrap()[0];
    assert_eq!(
        (a.index(), a.value(), a.op()),
        (0, 40, LinuxSeccompOperator::ScmpCmpNe)
    );
    let mut personas: Vec<u64> = rules(&p, "personality")
        .map(|s| s.args().as_ref().unwrap()[0].value())
        .collect();
    personas.sort();
    assert_eq!(personas, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
    let clone: Vec<_> = rules(&p, "clone").collect();
    assert_eq!(clone.len(), 1, "only the flag-filtered clone");
    let a = clone[0].args().as_ref().unwrap()[0];
    assert_eq!(a.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    assert_eq!(
        (a.index(), a.value(), a.value_two()),
        (0, 0x7e02_0000, None)
    );
    let clone3: Vec<_> = rules(&p, "clone3").collect();
    assert_eq!(clone3.len(), 1);
    assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(clone3[0].errno_ret(), Some(libc::ENOSYS as u32));
}

#[test]
fn cap_add_allows_the_calls_gated_on_it() {
    let mut caps = DEFAULT_CAPS.to_vec();
    caps.extend(["SYS_ADMIN", "SYS_PTRACE", "BPF", "SYS_BOOT", "SYS_TIME"]);
    let p = default_for(&target(&caps));
    for n in [
        "mount",
        "unshare",
        "setns",
        "clone",
        "clone3",
        "bpf",
        "perf_event_open",
        "ptrace",
        "process_vm_readv",
        "kcmp",
        "reboot",
        "clock_settime",
        "sethostname",
    ] {
        assert!(allowed(&p, n), "{n} must be allowed");
    }
    assert!(
        !rules(&p, "clone3").any(|s| s.action() == LinuxSeccompAction::ScmpActErrno),
        "clone3 is allowed outright with CAP_SYS_ADMIN"
    );
    for n in [
        "keyctl",
        "kexec_load",
        "init_module",
        "io_uring_setup",
        "userfaultfd",
    ] {
        assert_eq!(rules(&p, n).count(), 0, "{n} stays denied");
    }
    // Dropping a default capability drops its calls.
    let no_chroot: Vec<&str> = DEFAULT_CAPS
        .iter()
        .copied()
        .filter(|c| *c != "SYS_CHROOT")
        .collect();
    assert!(!allowed(&default_for(&target(&no_chroot)), "chroot"));
}

#[test]
fn min_kernel_and_architecture_conditions() {
    let mut old = target(DEFAULT_CAPS);
    old.kernel = Some(KernelVersion { major: 4, minor: 4 });
    assert!(
        !allowed(&default_for(&old), "ptrace"),
        "ptrace needs 4.8 without CAP_SYS_PTRACE"
    );
    assert!(allowed(&default_for(&target(DEFAULT_CAPS)), "ptrace"));
    let mut arm = target(DEFAULT_CAPS);
    arm.arch = "arm64";
    let p = default_for(&arm);
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
    );
    assert!(allowed(&p, "set_tls"));
    assert!(!allowed(&p, "arch_prctl"));
    assert_eq!(
        KernelVersion::parse("6.18.44-fc-v1272"),
        Some(KernelVersion {
            major: 6,
            minor: 18
        })
    );
    assert_eq!(KernelVersion::parse("6"), None);
}

#[test]
fn privileged_and_unconfined_have_no_filter() {
    let t = target(DEFAULT_CAPS);
    assert!(for_target(true, &[], &t).unwrap().is_none());
    assert!(for_target(false, &opt("seccomp=unconfined"), &t)
        .unwrap()
        .is_none());
    assert!(for_target(false, &opt("seccomp=builtin"), &t)
        .unwrap()
        .is_some());
    assert!(for_container(false, &[], &[]).unwrap().is_some());
}

#[test]
fn docker_format_profile_is_translated() {
    let json = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["uname"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
        ]
    }"#;
    let o = opt(&format!("seccomp={json}"));
    validate(&o).unwrap();
    let p = for_target(false, &o, &target(&["CHOWN"])).unwrap().unwrap();
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(p.default_errno_ret(), Some(1));
    assert!(allowed(&p, "read") && allowed(&p, "getpid") && allowed(&p, "ptrace"));
    assert!(!allowed(&p, "mount"), "needs CAP_SYS_ADMIN");
    assert!(!allowed(&p, "uname"), "excluded on amd64");
    assert_eq!(rules(&p, "personality").count(), 1);
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86][..]),
        "only the native archMap entry"
    );
    // Privileged with a named profile keeps that profile, as dockerd does.
    assert!(for_target(true, &o, &target(&["CHOWN"])).unwrap().is_some());
    // No default action and no rules: no filter.
    assert!(for_target(false, &opt("seccomp={}"), &target(&[]))
        .unwrap()
        .is_none());
}

#[test]
fn malformed_profiles_are_refused_with_dockers_messages() {
    for (json, want) in [
        ("{not json", "decoding seccomp profile failed"),
        (
            r#"{"defaultAction":"SCMP_ACT_NOPE"}"#,
            "decoding seccomp profile failed",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
            "both 'architectures' and 'archMap'",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#,
            "both 'name' and 'names'",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"four"}}]}"#,
            "invalid kernel version",
        ),
    ] {
        let err = validate(&opt(&format!("seccomp={json}"))).unwrap_err();
        assert!(err.message().contains(want), "{json}: {}", err.message());
    }
}
