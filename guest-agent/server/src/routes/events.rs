//! `GET /events`: replay from history for `since`, then live events until `until` or the
//! client goes away; filters by type, action, object and label.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_engine::events::Event;
use berth_engine::EngineError;
use futures::StreamExt;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_filters, Filters, Query};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

#[derive(Deserialize, Default)]
struct EventsQuery {
    since: Option<String>,
    until: Option<String>,
    filters: Option<String>,
}

/// Parses Docker's time arguments: unix seconds with optional fraction, or RFC 3339.
fn parse_time(s: &str) -> Result<i64, ApiError> {
    if let Ok(f) = s.parse::<f64>() {
        return Ok((f * 1e9) as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_nanos_opt().unwrap_or_default())
        .map_err(|_| ApiError(EngineError::invalid(format!("invalid timestamp: {s}"))))
}

fn value_matches(want: &[String], have: Option<&str>) -> bool {
    want.is_empty() || have.is_some_and(|h| want.iter().any(|w| w == h))
}

/// Whether `ev` passes every filter (each key ANDed, values within a key ORed).
pub fn matches(ev: &Event, f: &Filters) -> bool {
    let attr = |k: &str| ev.actor.attributes.get(k).map(String::as_str);
    for (key, want) in f {
        if want.is_empty() {
            continue;
        }
        let ok = match key.as_str() {
            "type" => value_matches(want, Some(&ev.typ)),
            "event" => want
                .iter()
                .any(|w| w == &ev.action || ev.action.starts_with(&format!("{w}:"))),
            "container" => {
                ev.typ == "container"
                    && want.iter().any(|w| {
                        ev.actor.id.starts_with(w.as_str()) || Some(w.as_str()) == attr("name")
                    })
            }
            "image" => want.iter().any(|w| {
                Some(w.as_str()) == attr("image")
                    || (ev.typ == "image"
                        && (ev.actor.id == *w || Some(w.as_str()) == attr("name")))
            }),
            "network" => {
                ev.typ == "network"
                    && want.iter().any(|w| {
                        ev.actor.id.starts_with(w.as_str()) || Some(w.as_str()) == attr("name")
                    })
            }
            "volume" => ev.typ == "volume" && want.contains(&ev.actor.id),
            "label" => want.iter().any(|w| match w.split_once('=') {
                Some((k, v)) => attr(k) == Some(v),
                None => attr(w).is_some(),
            }),
            "scope" => value_matches(want, Some(&ev.scope)),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

async fn events(
    State(engine): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Response> {
    let filters = parse_filters(q.filters.as_deref())?;
    let since = q
        .since
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(parse_time)
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(parse_time)
        .transpose()?;
    let (history, rx) = engine.events.subscribe();
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();

    let replay: Vec<Event> = match since {
        Some(s) => history
            .into_iter()
            .filter(|e| e.time_nano >= s && until.is_none_or(|u| e.time_nano <= u))
            .filter(|e| matches(e, &filters))
            .collect(),
        None => vec![],
    };
    let replay = futures::stream::iter(replay);
    // With `until` in the past, only history is sent; otherwise live events follow.
    let live_for = until.map(|u| Duration::from_nanos(u.saturating_sub(now).max(0) as u64));
    let f2 = filters.clone();
    let live = tokio_stream::wrappers::BroadcastStream::new(rx)
        .filter_map(|r| async move { r.ok() })
        .filter(move |e| std::future::ready(matches(e, &f2)));
    let live: futures::stream::BoxStream<'static, Event> = match live_for {
        Some(d) if d.is_zero() => futures::stream::empty().boxed(),
        Some(d) => live.take_until(tokio::time::sleep(d)).boxed(),
        None => live.boxed(),
    };
    let body = replay.chain(live).map(|e| {
        let mut line = serde_json::to_vec(&e).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, Infallible>(axum::body::Bytes::from(line))
    });
    let mut resp = Body::from_stream(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ev(typ: &str, action: &str, attrs: &[(&str, &str)]) -> Event {
        let bus = berth_engine::EventBus::new();
        bus.publish(
            typ,
            action,
            "abcdef",
            attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
        bus.subscribe().0.remove(0)
    }

    #[test]
    fn filters_select_by_type_event_label() {
        let e = ev("container", "start", &[("name", "web"), ("com.x", "1")]);
        let f = |s: &str| parse_filters(Some(s)).unwrap();
        assert!(matches(&e, &f(r#"{"type":["container"]}"#)));
        assert!(!matches(&e, &f(r#"{"type":["image"]}"#)));
        assert!(matches(&e, &f(r#"{"event":["start","stop"]}"#)));
        assert!(matches(&e, &f(r#"{"container":["web"]}"#)));
        assert!(matches(&e, &f(r#"{"label":{"com.x=1":true}}"#)));
        assert!(!matches(&e, &f(r#"{"label":["com.x=2"]}"#)));
        let h = ev("container", "health_status: healthy", &[]);
        assert!(matches(&h, &f(r#"{"event":["health_status"]}"#)));
    }

    #[test]
    fn parse_time_accepts_fractions_and_rfc3339() {
        assert_eq!(parse_time("1.5").unwrap(), 1_500_000_000);
        assert!(parse_time("2024-01-01T00:00:00Z").is_ok());
        assert!(parse_time("yesterday").is_err());
    }
}
