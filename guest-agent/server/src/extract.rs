//! Request extractors whose rejections use Docker's error shape.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use berth_engine::EngineError;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// JSON body; malformed input is a 400 `{"message"}`. An empty body deserialises from `{}`
/// where the type allows it, as some clients send none. `null` members count as absent, as
/// in Go's decoder: docker-py sends nested ones (`"IPAM":{"Config":[{"IPRange":null}]}`).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError(EngineError::invalid(e.body_text())))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let invalid =
            |e: serde_json::Error| ApiError(EngineError::invalid(format!("invalid JSON: {e}")));
        let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
        drop_null_members(&mut value);
        serde_json::from_value(value).map(JsonBody).map_err(invalid)
    }
}

/// Removes object members whose value is `null`, at any depth.
fn drop_null_members(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_null_members);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(drop_null_members),
        _ => {}
    }
}

/// Query string; bad parameters are a 400 `{"message"}`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| ApiError(EngineError::invalid(e.body_text())))
    }
}

/// Path parameters; a segment that is not valid UTF-8 once percent-decoded (`/containers/%FF/json`)
/// is a 400 `{"message"}` like any other bad input, not axum's plain-text answer.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| ApiError(EngineError::invalid(e.body_text())))
    }
}

#[allow(dead_code)]
fn _json_rejection_is_mapped(e: JsonRejection) -> ApiError {
    ApiError(EngineError::invalid(e.body_text()))
}

/// Queries that carry only `filters` (list and prune endpoints).
#[derive(serde::Deserialize, Default)]
pub struct FiltersQuery {
    pub filters: Option<String>,
}

/// `…/resize?h=&w=` of containers and execs.
#[derive(serde::Deserialize, Default)]
pub struct ResizeQuery {
    pub h: Option<u16>,
    pub w: Option<u16>,
}

/// Docker booleans in queries: `1`, `true`, `True` are true; `0`, `false`, empty are false.
pub fn de_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(matches!(
        s.as_deref().map(str::to_ascii_lowercase).as_deref(),
        Some("1" | "true" | "yes")
    ))
}

/// Docker's `filters` query parameter: JSON `{"key":["v"]}` or legacy `{"key":{"v":true}}`.
pub type Filters = std::collections::BTreeMap<String, Vec<String>>;

/// Parses a `filters` value, accepting both documented and legacy shapes.
pub fn parse_filters(raw: Option<&str>) -> Result<Filters, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(Filters::new());
    };
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ApiError(EngineError::invalid(format!("invalid filter: {e}"))))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError(EngineError::invalid("invalid filter: not an object")))?;
    let mut out = Filters::new();
    for (k, vals) in obj {
        let list: Vec<String> = match vals {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, on)| on.as_bool().unwrap_or(false))
                .map(|(k, _)| k.clone())
                .collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => {
                return Err(ApiError(EngineError::invalid(format!(
                    "invalid filter '{k}'"
                ))))
            }
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

/// A request body as a channel of chunks, fed by a task. Once the reader gives up (an error
/// answered before the upload ended: a read-only `docker cp` target, a bad build context),
/// the task keeps reading the body to its end and discards it, so the client can finish
/// writing and read the answer instead of failing with a broken pipe. A broken body ends it.
pub(crate) fn body_channel(
    body: axum::body::Body,
) -> tokio::sync::mpsc::Receiver<std::io::Result<axum::body::Bytes>> {
    use futures::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut forwarding = true;
        while let Some(chunk) = stream.next().await {
            let item = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = item.is_err();
            if forwarding && tx.send(item).await.is_err() {
                forwarding = false;
            }
            if failed {
                break;
            }
        }
    });
    rx
}

/// [`body_channel`] for a blocking reader (image load and import, build contexts).
pub(crate) fn body_reader(body: axum::body::Body) -> berth_engine::image::layer::ChannelReader {
    berth_engine::image::layer::ChannelReader::new(body_channel(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_members_count_as_absent() {
        let mut v = serde_json::json!({
            "Name": "n",
            "Driver": null,
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.1.0.0/24", "IPRange": null}]},
            "Options": {"a": [null, 1]}
        });
        drop_null_members(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "Name": "n",
                "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.1.0.0/24"}]},
                "Options": {"a": [null, 1]}
            })
        );
        v["Options"] = serde_json::json!({});
        let req: berth_docker_api::network::NetworkCreateRequest =
            serde_json::from_value(v).unwrap();
        assert_eq!(req.ipam.unwrap().config[0].subnet, "10.1.0.0/24");
    }

    #[test]
    fn filters_accept_both_shapes() {
        let a = parse_filters(Some(r#"{"label":{"a=b":true}}"#)).unwrap();
        let b = parse_filters(Some(r#"{"label":["a=b"]}"#)).unwrap();
        assert_eq!(a, b);
        assert!(parse_filters(Some("[1]")).is_err());
        assert!(parse_filters(None).unwrap().is_empty());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn filters() -> impl Strategy<Value = Filters> {
            prop::collection::btree_map("\\PC{0,8}", prop::collection::vec("\\PC{0,8}", 0..4), 0..4)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

            /// Any `filters` text is a map or a client error (400), never a panic.
            #[test]
            fn any_text_parses_or_is_a_client_error(s in "[{}\\[\\]\":,a-z0-9 truefalsn-]{0,40}|\\PC{0,40}") {
                if let Err(ApiError(e)) = parse_filters(Some(&s)) {
                    prop_assert_eq!(e.kind(), berth_engine::ErrorKind::InvalidArgument);
                }
            }

            /// Both documented shapes of the same filters parse to the same map.
            #[test]
            fn both_shapes_round_trip(f in filters()) {
                let lists = serde_json::to_string(&f).unwrap();
                prop_assert_eq!(&parse_filters(Some(&lists)).unwrap(), &f);
                let legacy: std::collections::BTreeMap<&String, std::collections::BTreeMap<&String, bool>> = f
                    .iter()
                    .map(|(k, vs)| (k, vs.iter().map(|v| (v, true)).collect()))
                    .collect();
                let mut sorted = f.clone();
                for vs in sorted.values_mut() {
                    vs.sort();
                    vs.dedup();
                }
                let legacy = serde_json::to_string(&legacy).unwrap();
                prop_assert_eq!(parse_filters(Some(&legacy)).unwrap(), sorted);
            }
        }
    }
}
