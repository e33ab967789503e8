//! `docker exec` tests.

use berth_test_support::Engine;

#[test]
fn exec_output_codes_stdin_and_options() {
    let e = Engine::start();
    e.docker_ok(&[
        "run",
        "-d",
        "--network=none",
        "--name",
        "ex",
        "-e",
        "C=1",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(e.docker_ok(&["exec", "ex", "echo", "hi"]), "hi\n");
    let o = e.docker(&["exec", "ex", "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5));
    let o = e.docker(&["exec", "ex", "no-such-binary"]);
    assert_eq!(o.status.code(), Some(126), "{o:?}");
    let o = e.docker_stdin(&["exec", "-i", "ex", "sh"], b"echo piped\n");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "piped\n");
    let out = e.docker_ok(&[
        "exec",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "-e",
        "D=2",
        "ex",
        "sh",
        "-c",
        "id -u; pwd; echo $C$D",
    ]);
    assert_eq!(out, "65534\n/tmp\n12\n");
    let out = e.docker_ok(&["exec", "ex", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(out, "out\n");
    e.docker_ok(&["stop", "-t", "0", "ex"]);
    let err = e.docker_err(&["exec", "ex", "true"]);
    assert!(err.contains("is not running"), "{err}");
}
