//! `moby.buildkit.v1.Control` and the gateway's `moby.buildkit.v1.frontend.LLBBridge` on the
//! `/grpc` connection. buildx runs every build through the gateway: `Control.Solve` without
//! a frontend registers the build (its ref, session and exporters) and waits; the gateway
//! client (`buildkit-controlapi-buildid` metadata = that ref) pings, solves with the
//! `dockerfile.v0` frontend and hands the result back with `Return`; then the solve exports
//! it (the `moby`/`image` exporter names the image in the engine's store).

use std::collections::HashMap;
use std::sync::Arc;

use berth_engine::Engine;
use bollard_buildkit_proto::moby::buildkit::v1 as bk;
use bollard_buildkit_proto::moby::buildkit::v1::apicaps::ApiCap;
use bollard_buildkit_proto::moby::buildkit::v1::control_server::{Control, ControlServer};
use bollard_buildkit_proto::moby::buildkit::v1::frontend as gw;
use bollard_buildkit_proto::moby::buildkit::v1::frontend::llb_bridge_server::{
    LlbBridge, LlbBridgeServer,
};
use bollard_buildkit_proto::moby::buildkit::v1::types::{BuildkitVersion, WorkerRecord};
use bollard_buildkit_proto::pb::Platform;
use futures::Stream;
use tonic::{Request, Response, Status};

use super::frontend;
use super::registry::{Registry, SolveInfo};
use super::status::{self, StatusStream};

const BUILD_ID_KEY: &str = "buildkit-controlapi-buildid";

/// The services of one `/grpc` connection.
pub(crate) fn services(engine: Arc<Engine>, reg: Arc<Registry>) -> tonic::service::Routes {
    let api = Api { engine, reg };
    tonic::service::Routes::new(ControlServer::new(api.clone()))
        .add_service(LlbBridgeServer::new(api))
}

#[derive(Clone)]
struct Api {
    engine: Arc<Engine>,
    reg: Arc<Registry>,
}

fn platform() -> Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    Platform {
        architecture: arch.into(),
        os: "linux".into(),
        ..Platform::default()
    }
}

fn worker() -> WorkerRecord {
    WorkerRecord {
        id: "berth".into(),
        labels: [
            ("org.mobyproject.buildkit.worker.executor", "berth"),
            ("org.mobyproject.buildkit.worker.snapshotter", "berth"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        platforms: vec![platform()],
        ..WorkerRecord::default()
    }
}

fn caps(ids: &[&str]) -> Vec<ApiCap> {
    ids.iter()
        .map(|id| ApiCap {
            id: id.to_string(),
            enabled: true,
            ..ApiCap::default()
        })
        .collect()
}

type BoxStream<T> = std::pin::Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn empty<T: Send + 'static>() -> BoxStream<T> {
    Box::pin(futures::stream::empty())
}

fn build_ref<T>(req: &Request<T>) -> Result<String, Status> {
    req.metadata()
        .get(BUILD_ID_KEY)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .ok_or_else(|| Status::invalid_argument("no buildid found in context"))
}

impl Api {
    /// Exports `image` with the solve's exporters, with the inline cache record when
    /// `inline_cache`; returns the exporter response.
    async fn export(
        &self,
        entry: &super::registry::BuildEntry,
        (build, session): (&str, &str),
        exporters: &[bk::Exporter],
        (image, inline_cache): (Option<String>, bool),
    ) -> Result<HashMap<String, String>, Status> {
        let mut resp = HashMap::new();
        let Some(mut id) = image else {
            return Ok(resp);
        };
        let mut vx = status::Vertexes::new(&format!("{build}/export"));
        if inline_cache {
            entry
                .status
                .publish(vx.start("preparing build cache for export"));
            let engine = self.engine.clone();
            let built = id.clone();
            let res = tokio::task::spawn_blocking(move || engine.with_inline_cache(&built))
                .await
                .map_err(|e| Status::internal(format!("inline cache export failed: {e}")))?;
            entry
                .status
                .publish(vx.complete(res.as_ref().err().map(|e| e.message()).unwrap_or_default()));
            id = res.map_err(|e| Status::internal(e.message().to_string()))?;
        }
        for e in exporters {
            match e.r#type.as_str() {
                "moby" | "image" | "docker" => {
                    entry.status.publish(vx.start("exporting to image"));
                    entry
                        .status
                        .publish(vx.log(&format!("writing image {id}\n")));
                    let names = frontend::export_names(&e.attrs);
                    for n in &names {
                        self.engine
                            .images
                            .tag(&id, n, "")
                            .map_err(|err| Status::invalid_argument(err.message().to_string()))?;
                        entry.status.publish(vx.log(&format!("naming to {n}\n")));
                    }
                    entry.status.publish(vx.complete(""));
                    if !names.is_empty() {
                        resp.insert("image.name".into(), names.join(","));
                    }
                    resp.insert("containerimage.digest".into(), id.clone());
                    resp.insert("containerimage.config.digest".into(), id.clone());
                }
                kind @ ("local" | "tar") => {
                    entry
                        .status
                        .publish(vx.start(&format!("exporting to client {kind}")));
                    let session = self.reg.session(session).await?;
                    let res = frontend::export_files(&self.engine, &session, &id, kind).await;
                    let err = res.as_ref().err().map(ToString::to_string);
                    entry
                        .status
                        .publish(vx.complete(err.as_deref().unwrap_or_default()));
                    res?;
                }
                other => {
                    return Err(Status::unimplemented(format!(
                        "exporter {other:?} is not supported by Berth yet"
                    )))
                }
            }
        }
        Ok(resp)
    }

    async fn run_frontend(
        &self,
        build: &str,
        frontend_name: &str,
        attrs: &HashMap<String, String>,
    ) -> Result<String, Status> {
        if !matches!(frontend_name, "dockerfile.v0" | "dockerfile") {
            return Err(Status::unimplemented(format!(
                "frontend {frontend_name:?} is not supported by Berth"
            )));
        }
        if attrs.contains_key("cmdline") || attrs.contains_key("source") {
            return Err(Status::unimplemented(
                "custom Dockerfile syntax frontends (# syntax=) are not supported by Berth",
            ));
        }
        let entry = self.reg.build(build);
        let info = entry.info().await?;
        let session = self.reg.session(&info.session).await?;
        Ok(frontend::dockerfile(self.engine.clone(), session, entry, build, attrs).await?)
    }
}

#[tonic::async_trait]
impl Control for Api {
    async fn disk_usage(
        &self,
        _r: Request<bk::DiskUsageRequest>,
    ) -> Result<Response<bk::DiskUsageResponse>, Status> {
        Ok(Response::new(bk::DiskUsageResponse::default()))
    }

    type PruneStream = BoxStream<bk::UsageRecord>;

    async fn prune(
        &self,
        _r: Request<bk::PruneRequest>,
    ) -> Result<Response<Self::PruneStream>, Status> {
        Ok(Response::new(empty()))
    }

    #[tracing::instrument(skip_all, fields(build = %r.get_ref().r#ref))]
    async fn solve(
        &self,
        r: Request<bk::SolveRequest>,
    ) -> Result<Response<bk::SolveResponse>, Status> {
        let req = r.into_inner();
        let build = req.r#ref.clone();
        let entry = self.reg.build(&build);
        let mut exporters = req.exporters.clone();
        if exporters.is_empty() && !req.exporter_deprecated.is_empty() {
            exporters.push(bk::Exporter {
                r#type: req.exporter_deprecated.clone(),
                attrs: req.exporter_attrs_deprecated.clone(),
            });
        }
        tracing::debug!(frontend = %req.frontend, ?exporters, "solve");
        let result = async {
            if req.definition.is_some() {
                return Err(Status::unimplemented(
                    "LLB definitions are not supported by Berth; use the dockerfile.v0 frontend",
                ));
            }
            let image = if req.frontend.is_empty() {
                let rx = entry.expect_return()?;
                entry.set_info(SolveInfo {
                    session: req.session.clone(),
                });
                let returned = rx
                    .await
                    .map_err(|_| Status::cancelled("the build's gateway went away"))??;
                returned.and_then(|res| result_ref(&res))
            } else {
                entry.set_info(SolveInfo {
                    session: req.session.clone(),
                });
                Some(
                    self.run_frontend(&build, &req.frontend, &req.frontend_attrs)
                        .await?,
                )
            };
            let inline_cache = req
                .cache
                .as_ref()
                .is_some_and(|c| c.exports.iter().any(|e| e.r#type == "inline"));
            self.export(
                &entry,
                (&build, &req.session),
                &exporters,
                (image, inline_cache),
            )
            .await
        }
        .await;
        self.reg.finish(&build);
        let exporter_response = result?;
        Ok(Response::new(bk::SolveResponse { exporter_response }))
    }

    type StatusStream = StatusStream;

    async fn status(
        &self,
        r: Request<bk::StatusRequest>,
    ) -> Result<Response<Self::StatusStream>, Status> {
        let entry = self.reg.build(&r.get_ref().r#ref);
        Ok(Response::new(status::stream(entry)))
    }

    type SessionStream = BoxStream<bk::BytesMessage>;

    async fn session(
        &self,
        _r: Request<tonic::Streaming<bk::BytesMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        Err(Status::unimplemented(
            "sessions over the control API are not supported by Berth; use /session",
        ))
    }

    async fn list_workers(
        &self,
        _r: Request<bk::ListWorkersRequest>,
    ) -> Result<Response<bk::ListWorkersResponse>, Status> {
        Ok(Response::new(bk::ListWorkersResponse {
            record: vec![worker()],
        }))
    }

    async fn info(
        &self,
        _r: Request<bk::InfoRequest>,
    ) -> Result<Response<bk::InfoResponse>, Status> {
        Ok(Response::new(bk::InfoResponse {
            buildkit_version: Some(BuildkitVersion {
                package: "github.com/moby/buildkit".into(),
                version: "v0.13.0-berth".into(),
                revision: env!("CARGO_PKG_VERSION").into(),
            }),
        }))
    }

    type ListenBuildHistoryStream = BoxStream<bk::BuildHistoryEvent>;

    async fn listen_build_history(
        &self,
        _r: Request<bk::BuildHistoryRequest>,
    ) -> Result<Response<Self::ListenBuildHistoryStream>, Status> {
        Ok(Response::new(empty()))
    }

    async fn update_build_history(
        &self,
        _r: Request<bk::UpdateBuildHistoryRequest>,
    ) -> Result<Response<bk::UpdateBuildHistoryResponse>, Status> {
        Ok(Response::new(bk::UpdateBuildHistoryResponse::default()))
    }
}

/// The image id a gateway result points at (a single ref; the first of a map).
fn result_ref(res: &gw::Result) -> Option<String> {
    use gw::result::Result as R;
    let id = match res.result.as_ref()? {
        R::RefDeprecated(id) => id.clone(),
        R::Ref(r) => r.id.clone(),
        R::RefsDeprecated(m) => m.refs.values().next()?.clone(),
        R::Refs(m) => m.refs.values().next()?.id.clone(),
    };
    Some(id).filter(|s| !s.is_empty())
}

fn unsupported<T>(what: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "{what} is not supported by Berth's builder"
    )))
}

#[tonic::async_trait]
impl LlbBridge for Api {
    async fn resolve_image_config(
        &self,
        _r: Request<gw::ResolveImageConfigRequest>,
    ) -> Result<Response<gw::ResolveImageConfigResponse>, Status> {
        unsupported("ResolveImageConfig")
    }

    async fn resolve_source_meta(
        &self,
        _r: Request<gw::ResolveSourceMetaRequest>,
    ) -> Result<Response<gw::ResolveSourceMetaResponse>, Status> {
        unsupported("ResolveSourceMeta")
    }

    async fn solve(
        &self,
        r: Request<gw::SolveRequest>,
    ) -> Result<Response<gw::SolveResponse>, Status> {
        let build = build_ref(&r)?;
        let req = r.into_inner();
        if req.definition.is_some() || req.frontend.is_empty() {
            return unsupported("solving LLB definitions");
        }
        // Cache imports given to the gateway rather than in the frontend's attributes.
        let mut attrs = req.frontend_opt.clone();
        let refs: Vec<String> = req
            .cache_imports
            .iter()
            .filter(|e| e.r#type == "registry")
            .filter_map(|e| e.attrs.get("ref").cloned())
            .collect();
        if !refs.is_empty() && !attrs.contains_key("cache-imports") {
            attrs.insert("cache-from".into(), refs.join(","));
        }
        let id = self.run_frontend(&build, &req.frontend, &attrs).await?;
        Ok(Response::new(gw::SolveResponse {
            r#ref: String::new(),
            result: Some(gw::Result {
                result: Some(gw::result::Result::Ref(gw::Ref { id, def: None })),
                ..gw::Result::default()
            }),
        }))
    }

    async fn read_file(
        &self,
        _r: Request<gw::ReadFileRequest>,
    ) -> Result<Response<gw::ReadFileResponse>, Status> {
        unsupported("ReadFile")
    }

    async fn read_dir(
        &self,
        _r: Request<gw::ReadDirRequest>,
    ) -> Result<Response<gw::ReadDirResponse>, Status> {
        unsupported("ReadDir")
    }

    async fn stat_file(
        &self,
        _r: Request<gw::StatFileRequest>,
    ) -> Result<Response<gw::StatFileResponse>, Status> {
        unsupported("StatFile")
    }

    async fn evaluate(
        &self,
        _r: Request<gw::EvaluateRequest>,
    ) -> Result<Response<gw::EvaluateResponse>, Status> {
        // Results are images already built when the gateway's solve returns.
        Ok(Response::new(gw::EvaluateResponse::default()))
    }

    async fn ping(
        &self,
        _r: Request<gw::PingRequest>,
    ) -> Result<Response<gw::PongResponse>, Status> {
        Ok(Response::new(gw::PongResponse {
            frontend_api_caps: caps(&[
                "solve.base",
                "solve.inlinereturn",
                "readfile",
                "return",
                "returnmap",
                "proto.refarray",
                "frontend.inputs",
                "gateway.evaluate",
                "gateway.solve.evaluate",
                "gateway.warnings",
            ]),
            llb_caps: vec![],
            workers: vec![worker()],
        }))
    }

    async fn r#return(
        &self,
        r: Request<gw::ReturnRequest>,
    ) -> Result<Response<gw::ReturnResponse>, Status> {
        let build = build_ref(&r)?;
        let req = r.into_inner();
        let returned = match req.error {
            Some(e) if e.code != 0 => Err(Status::new(tonic::Code::from(e.code), e.message)),
            _ => Ok(req.result),
        };
        self.reg.build(&build).deliver(returned);
        Ok(Response::new(gw::ReturnResponse::default()))
    }

    async fn inputs(
        &self,
        _r: Request<gw::InputsRequest>,
    ) -> Result<Response<gw::InputsResponse>, Status> {
        Ok(Response::new(gw::InputsResponse::default()))
    }

    async fn new_container(
        &self,
        _r: Request<gw::NewContainerRequest>,
    ) -> Result<Response<gw::NewContainerResponse>, Status> {
        unsupported("NewContainer")
    }

    async fn release_container(
        &self,
        _r: Request<gw::ReleaseContainerRequest>,
    ) -> Result<Response<gw::ReleaseContainerResponse>, Status> {
        unsupported("ReleaseContainer")
    }

    type ExecProcessStream = BoxStream<gw::ExecMessage>;

    async fn exec_process(
        &self,
        _r: Request<tonic::Streaming<gw::ExecMessage>>,
    ) -> Result<Response<Self::ExecProcessStream>, Status> {
        unsupported("ExecProcess")
    }

    async fn read_file_container(
        &self,
        _r: Request<gw::ReadFileRequest>,
    ) -> Result<Response<gw::ReadFileResponse>, Status> {
        unsupported("ReadFileContainer")
    }

    async fn read_dir_container(
        &self,
        _r: Request<gw::ReadDirRequest>,
    ) -> Result<Response<gw::ReadDirResponse>, Status> {
        unsupported("ReadDirContainer")
    }

    async fn stat_file_container(
        &self,
        _r: Request<gw::StatFileRequest>,
    ) -> Result<Response<gw::StatFileResponse>, Status> {
        unsupported("StatFileContainer")
    }

    async fn warn(
        &self,
        _r: Request<gw::WarnRequest>,
    ) -> Result<Response<gw::WarnResponse>, Status> {
        Ok(Response::new(gw::WarnResponse::default()))
    }
}
