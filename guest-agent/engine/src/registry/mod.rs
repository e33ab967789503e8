//! Registry client: OCI distribution v2 reads (manifests, blobs), token and basic auth,
//! mirrors for docker.io names and plain HTTP for loopback and insecure registries.
//!
//! Built on reqwest rather than oci-client: Berth needs per-endpoint fallback (mirrors, then
//! https→http for insecure registries), a streaming blob body it hashes and unpacks in one
//! pass, byte-level progress and the registry's own error texts; oci-client hides those
//! behind its whole-blob API and fixed protocol choice.

pub mod auth;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use berth_docker_api::auth::AuthConfig;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

pub use auth::Credentials;
use auth::{parse_challenge, Challenge};

use crate::{EngineConfig, EngineError, Result};

/// Docker Hub's registry endpoint, used for docker.io names when no mirror is configured.
const HUB_ENDPOINT: &str = "https://registry-1.docker.io";
/// Hostnames `docker login` uses for Docker Hub.
const HUB_ALIASES: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// Media types a pull accepts, most specific first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Shared HTTP client and registry settings.
pub struct RegistryClient {
    http: reqwest::Client,
    config: Arc<EngineConfig>,
}

/// `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Formats a registry error body like distribution's errcode (`manifest unknown: manifest unknown`).
fn registry_message(status: StatusCode, body: &[u8]) -> String {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let msgs: Vec<String> = parsed
        .map(|b| b.errors)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let code = e.code.to_ascii_lowercase().replace('_', " ");
            if e.message.is_empty() {
                code
            } else {
                format!("{code}: {}", e.message)
            }
        })
        .collect();
    if msgs.is_empty() {
        let text = String::from_utf8_lossy(body).trim().to_string();
        if text.is_empty() || text.len() > 200 {
            format!("unexpected status code {status}")
        } else {
            text
        }
    } else {
        msgs.join("\n")
    }
}

/// An error answer from a registry, with its status.
#[derive(Debug, Clone)]
pub struct RegistryError {
    pub status: StatusCode,
    pub message: String,
}

impl RegistryError {
    /// Converts to an engine error of the matching kind.
    pub fn into_engine(self) -> EngineError {
        match self.status {
            StatusCode::NOT_FOUND => EngineError::not_found(self.message),
            StatusCode::UNAUTHORIZED => EngineError::unauthorized(self.message),
            StatusCode::FORBIDDEN => EngineError::new(crate::ErrorKind::Forbidden, self.message),
            _ => EngineError::unavailable(self.message),
        }
    }
}

async fn error_of(resp: reqwest::Response) -> RegistryError {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    RegistryError {
        status,
        message: registry_message(status, &body),
    }
}

fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    domain.rsplit_once(':').map_or(domain, |(h, _)| h)
}

fn is_loopback(domain: &str) -> bool {
    let host = host_of(domain);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `domain` is listed in `insecure` by name, host:port or IPv4 CIDR.
fn is_insecure(domain: &str, insecure: &[String]) -> bool {
    let host = host_of(domain);
    insecure.iter().any(|entry| {
        let entry = entry
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        if entry == domain || entry == host {
            return true;
        }
        let Some((net, bits)) = entry.split_once('/') else {
            return false;
        };
        match (
            net.parse::<std::net::Ipv4Addr>(),
            bits.parse::<u32>(),
            host.parse::<std::net::Ipv4Addr>(),
        ) {
            (Ok(net), Ok(bits), Ok(ip)) if bits <= 32 => {
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            _ => false,
        }
    })
}

impl RegistryClient {
    pub fn new(config: Arc<EngineConfig>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(config.registry_read_timeout)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EngineError::internal(format!("registry client: {e}")))?;
        Ok(Self { http, config })
    }

    /// Base URLs to try for `domain`, in order.
    pub fn endpoints(&self, domain: &str) -> Vec<String> {
        if HUB_ALIASES.contains(&domain) {
            if self.config.registry_mirrors.is_empty() {
                return vec![HUB_ENDPOINT.to_string()];
            }
            // Mirrors only: never fall through to the Hub behind a configured mirror.
            return self
                .config
                .registry_mirrors
                .iter()
                .map(|m| m.trim_end_matches('/').to_string())
                .collect();
        }
        if is_loopback(domain) {
            vec![format!("http://{domain}")]
        } else if is_insecure(domain, &self.config.insecure_registries) {
            vec![format!("https://{domain}"), format!("http://{domain}")]
        } else {
            vec![format!("https://{domain}")]
        }
    }

    /// A handle on repository `path` of registry `domain`, for pulling.
    pub fn repository(&self, domain: &str, path: &str, creds: Option<Credentials>) -> Repository {
        Repository {
            http: self.http.clone(),
            endpoints: self.endpoints(domain),
            path: path.to_string(),
            creds,
            actions: "pull",
            state: Mutex::new(AuthState::default()),
        }
    }

    /// A handle on repository `path` of registry `domain`, for pushing.
    pub fn repository_for_push(
        &self,
        domain: &str,
        path: &str,
        creds: Option<Credentials>,
    ) -> Repository {
        Repository {
            actions: "pull,push",
            ..self.repository(domain, path, creds)
        }
    }

    /// Checks credentials against a registry (`POST /auth`).
    pub async fn login(&self, cfg: &AuthConfig) -> Result<()> {
        let server = cfg
            .serveraddress
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let domain = server.split('/').next().unwrap_or_default();
        let domain = if domain.is_empty() {
            "docker.io"
        } else {
            domain
        };
        let creds = Credentials::from_auth_config(cfg);
        let repo = Repository {
            http: self.http.clone(),
            endpoints: self.endpoints(domain),
            path: String::new(),
            creds,
            actions: "pull",
            state: Mutex::new(AuthState::default()),
        };
        let first = format!("{}/v2/", repo.endpoints.first().map_or("", String::as_str));
        let resp = repo
            .send(Method::GET, "/v2/", None, Extra::default())
            .await
            .map_err(|e| match e.kind() {
                crate::ErrorKind::Unauthorized => {
                    EngineError::unauthorized(format!("Get \"{first}\": {}", e.message()))
                }
                _ => e,
            })?;
        if resp.status().is_success() {
            return Ok(());
        }
        let base = repo.state.lock().await.base.unwrap_or(0);
        let url = format!("{}/v2/", repo.endpoints[base]);
        let status = resp.status();
        tracing::debug!(%url, %status, "login refused");
        Err(EngineError::unauthorized(format!(
            "login attempt to {url} failed with status: {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )))
    }
}

#[derive(Default)]
struct AuthState {
    /// Index of the endpoint that answered last.
    base: Option<usize>,
    /// `Authorization` header value that worked.
    authorization: Option<HeaderValue>,
}

/// One repository on one registry, with the auth state of this session.
pub struct Repository {
    http: reqwest::Client,
    endpoints: Vec<String>,
    path: String,
    creds: Option<Credentials>,
    /// Token scope actions: `pull` or `pull,push`.
    actions: &'static str,
    state: Mutex<AuthState>,
}

/// Optional parts of a registry request.
#[derive(Default, Clone)]
struct Extra {
    /// Resume a download from this byte.
    range_from: Option<u64>,
    /// Request body and its content type.
    body: Option<(bytes::Bytes, String)>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
}

/// A fetched manifest.
pub struct Manifest {
    pub bytes: bytes::Bytes,
    pub media_type: String,
}

impl Repository {
    /// Sends a request, trying endpoints in order on connection errors and answering one
    /// auth challenge. Non-2xx answers are returned to the caller.
    async fn send(
        &self,
        method: Method,
        suffix: &str,
        accept: Option<&str>,
        extra: Extra,
    ) -> Result<reqwest::Response> {
        let (start, mut auth) = {
            let st = self.state.lock().await;
            (st.base.unwrap_or(0), st.authorization.clone())
        };
        let mut challenged = false;
        let mut idx = start;
        let mut last_err = None;
        while idx < self.endpoints.len() {
            // Upload locations come back as absolute URLs.
            let url = if suffix.starts_with("http://") || suffix.starts_with("https://") {
                suffix.to_string()
            } else {
                format!("{}{suffix}", self.endpoints[idx])
            };
            let mut req = self.http.request(method.clone(), &url);
            if let Some((body, content_type)) = &extra.body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, content_type.as_str())
                    .body(body.clone());
            }
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(a) = &auth {
                req = req.header(AUTHORIZATION, a.clone());
            }
            if let Some(from) = extra.range_from.filter(|f| *f > 0) {
                req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(%url, error = %e, "registry endpoint failed");
                    last_err = Some(format!("Get \"{url}\": {}", root_cause(&e)));
                    idx += 1;
                    continue;
                }
            };
            self.state.lock().await.base = Some(idx);
            if resp.status() == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                if let Some(value) = self.authorize(challenge).await? {
                    self.state.lock().await.authorization = Some(value.clone());
                    auth = Some(value);
                    continue;
                }
            }
            return Ok(resp);
        }
        Err(EngineError::unavailable(
            last_err.unwrap_or_else(|| "no registry endpoint".into()),
        ))
    }

    /// Answers a challenge: a bearer token from the realm, or basic credentials.
    async fn authorize(&self, challenge: Option<Challenge>) -> Result<Option<HeaderValue>> {
        let value = match challenge {
            Some(Challenge::Basic) => match &self.creds {
                Some(c) => c.basic(),
                None => return Ok(None),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                if let Some(t) = self.creds.as_ref().filter(|c| !c.registry_token.is_empty()) {
                    format!("Bearer {}", t.registry_token)
                } else {
                    let scope = if self.path.is_empty() {
                        scope
                    } else {
                        Some(format!("repository:{}:{}", self.path, self.actions))
                    };
                    format!("Bearer {}", self.token(&realm, service, scope).await?)
                }
            }
            None => return Ok(None),
        };
        HeaderValue::from_str(&value)
            .map(Some)
            .map_err(|_| EngineError::invalid("invalid credentials"))
    }

    async fn token(
        &self,
        realm: &str,
        service: Option<String>,
        scope: Option<String>,
    ) -> Result<String> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(s) = service {
            query.push(("service", s));
        }
        if let Some(s) = scope {
            query.push(("scope", s));
        }
        if let Some(c) = self.creds.as_ref().filter(|c| !c.username.is_empty()) {
            query.push(("account", c.username.clone()));
        }
        let url = reqwest::Url::parse_with_params(realm, &query)
            .map_err(|e| EngineError::unavailable(format!("invalid token realm {realm}: {e}")))?;
        let mut req = self.http.get(url);
        if let Some(c) = &self.creds {
            if !c.identity_token.is_empty() {
                req = req.basic_auth("<token>", Some(&c.identity_token));
            } else if !c.username.is_empty() {
                req = req.basic_auth(&c.username, Some(&c.password));
            }
        }
        let resp = req.send().await.map_err(|e| {
            EngineError::unavailable(format!("token request to {realm}: {}", error_chain(&e)))
        })?;
        if !resp.status().is_success() {
            return Err(error_of(resp).await.into_engine());
        }
        let t: TokenResponse = resp
            .json()
            .await
            .map_err(|e| EngineError::unavailable(format!("token from {realm}: {e}")))?;
        Ok(if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        })
    }

    /// Fetches the manifest named by a tag or digest.
    pub async fn manifest(&self, tag_or_digest: &str) -> Result<Manifest, RegistryError> {
        let suffix = format!("/v2/{}/manifests/{tag_or_digest}", self.path);
        let resp = self
            .send(
                Method::GET,
                &suffix,
                Some(MANIFEST_ACCEPT),
                Extra::default(),
            )
            .await
            .map_err(engine_to_registry)?;
        if !resp.status().is_success() {
            return Err(error_of(resp).await);
        }
        let media_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let bytes = resp.bytes().await.map_err(|e| RegistryError {
            status: StatusCode::BAD_GATEWAY,
            message: format!("reading manifest: {}", error_chain(&e)),
        })?;
        Ok(Manifest { bytes, media_type })
    }

    /// Starts downloading a blob (from byte `from` on, when resuming).
    pub async fn blob(&self, digest: &str, from: u64) -> Result<reqwest::Response> {
        let suffix = format!("/v2/{}/blobs/{digest}", self.path);
        let extra = Extra {
            range_from: Some(from),
            body: None,
        };
        let resp = self.send(Method::GET, &suffix, None, extra).await?;
        if !resp.status().is_success() {
            return Err(error_of(resp).await.into_engine());
        }
        Ok(resp)
    }

    /// Downloads a small blob (a config) completely.
    pub async fn blob_bytes(&self, digest: &str) -> Result<bytes::Bytes> {
        self.blob(digest, 0)
            .await?
            .bytes()
            .await
            .map_err(|e| EngineError::unavailable(format!("reading blob {digest}: {e}")))
    }
}

impl Repository {
    /// Whether the registry already has a blob in this repository.
    pub async fn blob_exists(&self, digest: &str) -> Result<bool> {
        let suffix = format!("/v2/{}/blobs/{digest}", self.path);
        let resp = self
            .send(Method::HEAD, &suffix, None, Extra::default())
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(error_of(resp).await.into_engine()),
        }
    }

    /// Uploads a blob in one request (POST for a session, then PUT with the digest).
    pub async fn upload_blob(&self, digest: &str, data: bytes::Bytes) -> Result<()> {
        let suffix = format!("/v2/{}/blobs/uploads/", self.path);
        let resp = self
            .send(Method::POST, &suffix, None, Extra::default())
            .await?;
        if !resp.status().is_success() {
            return Err(error_of(resp).await.into_engine());
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| EngineError::unavailable("registry gave no upload location"))?
            .to_string();
        let location = if location.starts_with('/') {
            let base = self.state.lock().await.base.unwrap_or(0);
            format!("{}{location}", self.endpoints[base])
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let extra = Extra {
            range_from: None,
            body: Some((data, "application/octet-stream".into())),
        };
        let resp = self.send(Method::PUT, &url, None, extra).await?;
        if !resp.status().is_success() {
            return Err(error_of(resp).await.into_engine());
        }
        Ok(())
    }

    /// Stores a manifest under a tag or digest.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: bytes::Bytes,
    ) -> Result<()> {
        let suffix = format!("/v2/{}/manifests/{reference}", self.path);
        let extra = Extra {
            range_from: None,
            body: Some((bytes, media_type.to_string())),
        };
        let resp = self.send(Method::PUT, &suffix, None, extra).await?;
        if !resp.status().is_success() {
            return Err(error_of(resp).await.into_engine());
        }
        Ok(())
    }
}

fn engine_to_registry(e: EngineError) -> RegistryError {
    let status = match e.kind() {
        crate::ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        crate::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_GATEWAY,
    };
    RegistryError {
        status,
        message: e.message().to_string(),
    }
}

/// The innermost source of an error (`Connection refused (os error 111)`).
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(src) = cur.source() {
        cur = src;
    }
    cur.to_string()
}

/// An error with its sources, for messages (reqwest's top-level text says little).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        s.push_str(": ");
        s.push_str(&src.to_string());
        cur = src.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(mirrors: &[&str], insecure: &[&str]) -> RegistryClient {
        let mut c = EngineConfig::new("/nonexistent".into());
        c.registry_mirrors = mirrors.iter().map(|s| s.to_string()).collect();
        c.insecure_registries = insecure.iter().map(|s| s.to_string()).collect();
        RegistryClient::new(Arc::new(c)).unwrap()
    }

    #[test]
    fn endpoints_follow_mirrors_and_insecure_rules() {
        let c = client(
            &["http://127.0.0.1:5001/"],
            &["reg.lan:5000", "10.1.0.0/16"],
        );
        assert_eq!(c.endpoints("docker.io"), ["http://127.0.0.1:5001"]);
        assert_eq!(c.endpoints("localhost:5000"), ["http://localhost:5000"]);
        assert_eq!(c.endpoints("127.0.0.5:80"), ["http://127.0.0.5:80"]);
        assert_eq!(
            c.endpoints("reg.lan:5000"),
            ["https://reg.lan:5000", "http://reg.lan:5000"]
        );
        assert_eq!(c.endpoints("10.1.2.3:5000").len(), 2);
        assert_eq!(c.endpoints("10.2.2.3:5000"), ["https://10.2.2.3:5000"]);
        assert_eq!(c.endpoints("quay.io"), ["https://quay.io"]);
        assert_eq!(client(&[], &[]).endpoints("docker.io"), [HUB_ENDPOINT]);
    }

    #[test]
    fn registry_errors_read_like_distribution() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#;
        assert_eq!(
            registry_message(StatusCode::NOT_FOUND, body),
            "manifest unknown: manifest unknown"
        );
        assert_eq!(
            registry_message(StatusCode::BAD_GATEWAY, b""),
            "unexpected status code 502 Bad Gateway"
        );
    }
}
