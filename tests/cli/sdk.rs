//! The same engine driven by a Rust SDK (bollard) instead of the CLI: pull, create, start,
//! wait, logs, inspect (validated against Docker's spec), remove.

use berth_test_support::{assert_response, Engine};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;

fn client(e: &Engine) -> Docker {
    Docker::connect_with_unix(&e.host(), 60, bollard::API_DEFAULT_VERSION).expect("bollard client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_runs_a_container_end_to_end() {
    let e = Engine::start();
    let docker = client(&e);
    docker.ping().await.expect("ping");
    let v = docker.version().await.expect("version");
    assert_eq!(v.api_version.as_deref(), Some("1.50"));

    let mut pull = docker.create_image(
        Some(CreateImageOptions {
            from_image: Some("busybox".into()),
            tag: Some("latest".into()),
            ..Default::default()
        }),
        None,
        None,
    );
    let mut statuses = vec![];
    while let Some(item) = pull.next().await {
        statuses.push(item.expect("pull progress").status.unwrap_or_default());
    }
    assert!(
        statuses.iter().any(|s| s.starts_with("Status: ")),
        "{statuses:?}"
    );

    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some("sdk1".into()),
                ..Default::default()
            }),
            bollard::models::ContainerCreateBody {
                image: Some("busybox".into()),
                cmd: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "echo out; echo err >&2; exit 7".into(),
                ]),
                labels: Some([("berth.test".to_string(), "sdk".to_string())].into()),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    docker
        .start_container(&created.id, None)
        .await
        .expect("start");
    let waited: Vec<_> = docker
        .wait_container(
            &created.id,
            Some(WaitContainerOptions {
                condition: "not-running".into(),
            }),
        )
        .collect()
        .await;
    // bollard reports a non-zero exit as an error carrying the code.
    match waited.into_iter().next().expect("one wait result") {
        Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => assert_eq!(code, 7),
        other => panic!("unexpected wait result {other:?}"),
    }

    // stdout and stderr come through separately (their relative order is not defined).
    for (stdout, stderr, want) in [(true, false, "out\n"), (false, true, "err\n")] {
        let logs: Vec<String> = docker
            .logs(
                &created.id,
                Some(LogsOptions {
                    stdout,
                    stderr,
                    tail: "all".into(),
                    ..Default::default()
                }),
            )
            .map(|l| l.expect("log frame").to_string())
            .collect()
            .await;
        assert_eq!(logs.concat(), want);
    }

    let listed = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some([("label".to_string(), vec!["berth.test=sdk".to_string()])].into()),
            ..Default::default()
        }))
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].names.as_deref(), Some(&["/sdk1".to_string()][..]));

    // Raw responses against Docker's own spec.
    let (s, body) = e.api("GET", "/v1.50/containers/json?all=1", None);
    assert_eq!(s, 200);
    assert_response(
        "GET",
        "/containers/json",
        200,
        &serde_json::from_str(&body).unwrap(),
    );
    let (s, body) = e.api("GET", "/v1.50/containers/sdk1/json", None);
    assert_eq!(s, 200);
    let inspect: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_response("GET", "/containers/{id}/json", 200, &inspect);
    assert_eq!(inspect["State"]["ExitCode"], 7);
    let (s, body) = e.api("GET", "/v1.50/images/json", None);
    assert_eq!(s, 200);
    assert_response(
        "GET",
        "/images/json",
        200,
        &serde_json::from_str(&body).unwrap(),
    );
    let (s, body) = e.api("GET", "/v1.50/images/busybox/json", None);
    assert_eq!(s, 200);
    assert_response(
        "GET",
        "/images/{name}/json",
        200,
        &serde_json::from_str(&body).unwrap(),
    );

    docker
        .remove_container(
            &created.id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .expect("remove");
    let err = docker
        .inspect_container("sdk1", None)
        .await
        .expect_err("gone");
    assert!(err.to_string().contains("No such container: sdk1"), "{err}");
}
