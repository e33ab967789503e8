//! `docker exec` tests.

use std::time::Duration;

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

/// Runs `cmd` (a shell command line) in a pseudo terminal of `rows`x`cols` made by script(1).
fn in_terminal(e: &Engine, rows: u16, cols: u16, cmd: &str) -> (Option<i32>, String) {
    let line = format!("stty rows {rows} cols {cols}; {cmd}");
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("DOCKER_HOST", e.host())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).replace('\r', ""),
    )
}

#[test]
fn exec_with_a_terminal_sizes_codes_and_start_errors() {
    let e = Engine::start();
    e.docker_ok(&[
        "run",
        "-d",
        "--network=none",
        "--name",
        "tx",
        "busybox",
        "sleep",
        "300",
    ]);
    // The exec's terminal is a pty in the container, sized like the client's.
    let (code, text) = in_terminal(
        &e,
        33,
        101,
        "docker exec -t tx sh -c 'tty; stty size; exit 4'",
    );
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("33 101"), "{text}");
    // The client resizes the exec's terminal; the size reaches the container's pty. (A
    // background job's stdin is /dev/null unless given; the CLI watches sizes of a terminal.)
    let (code, text) = in_terminal(
        &e,
        20,
        60,
        "docker exec -t tx sh -c 'sleep 1; stty size' </dev/tty & sleep 0.5; stty rows 40 cols 120; kill -WINCH $!; wait $!",
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("40 120"), "{text}");
    // A resize that comes before the process has a terminal (clients send it right after the
    // start request; here before it) is kept and given to the terminal it gets.
    let (code, body) = e.api(
        "POST",
        "/containers/tx/exec",
        Some(r#"{"AttachStdout":true,"AttachStderr":true,"Tty":true,"Cmd":["stty","size"]}"#),
    );
    assert_eq!(code, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).expect("exec create")["Id"]
        .as_str()
        .expect("exec id")
        .to_string();
    let (code, body) = e.api("POST", &format!("/exec/{id}/resize?h=33&w=77"), None);
    assert_eq!(code, 200, "{body}");
    let (code, body) = e.api(
        "POST",
        &format!("/exec/{id}/start"),
        Some(r#"{"Tty":true}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("33 77"), "{body:?}");
    // Start failures inside the stream, with dockerd's exit code 126 (TTY or not).
    for flags in [&["-t"][..], &[][..]] {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["tx", "no-such-binary"]);
        let o = e.docker(&args);
        assert_eq!(o.status.code(), Some(126), "{flags:?} {o:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(all.contains("executable file not found"), "{all}");
    }
    let o = e.docker(&["exec", "-u", "nosuchuser", "tx", "true"]);
    assert_eq!(o.status.code(), Some(126), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("unable to find user nosuchuser"), "{o:?}");
}

/// A TTY exec whose client hung up (its shell waits for input for ever) must not keep the
/// engine from stopping on SIGTERM.
#[test]
fn engine_stops_while_a_tty_exec_outlives_its_client() {
    use std::io::{Read, Write};
    let mut e = Engine::start();
    e.docker_ok(&["pull", "-q", "busybox"]);
    e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let (status, body) = e.api(
        "POST",
        "/containers/c1/exec",
        Some(r#"{"Tty":true,"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Cmd":["sh"]}"#),
    );
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut s = std::os::unix::net::UnixStream::connect(e.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = r#"{"Detach":false,"Tty":true}"#;
    write!(
        s,
        "POST /exec/{id}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{start}",
        start.len()
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    drop(s);
    let t = std::time::Instant::now();
    let exit = e.stop();
    assert!(
        exit.is_some_and(|s| s.success()),
        "engine did not exit on SIGTERM ({exit:?} after {:?})\n{}",
        t.elapsed(),
        e.log_tail()
    );
    e.start_again();
    e.docker_ok(&["rm", "-f", "c1"]);
}
