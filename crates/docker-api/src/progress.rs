//! Streaming progress lines of pull, push, load and build (`JSONMessage` in moby): one JSON
//! object per line, errors in-band after the 200.

use serde::{Deserialize, Serialize};

/// `progressDetail`: `{}` or `{"current":N,"total":M}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

/// `errorDetail`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    pub message: String,
}

/// One progress line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProgressMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl ProgressMessage {
    /// A plain status line: `{"status":"Digest: sha256:…"}`.
    pub fn status(status: impl Into<String>) -> Self {
        Self {
            status: Some(status.into()),
            ..Self::default()
        }
    }

    /// A status line about one object (layer or tag): `{"status":…,"progressDetail":{},"id":…}`.
    pub fn with_id(status: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            status: Some(status.into()),
            progress_detail: Some(ProgressDetail::default()),
            id: Some(id.into()),
            ..Self::default()
        }
    }

    /// The in-band error line.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            error_detail: Some(ErrorDetail {
                code: None,
                message: message.clone(),
            }),
            error: Some(message),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_dockerd() {
        let l =
            serde_json::to_string(&ProgressMessage::with_id("Pulling fs layer", "abc")).unwrap();
        assert_eq!(
            l,
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"abc"}"#
        );
        let e = serde_json::to_string(&ProgressMessage::error("boom")).unwrap();
        assert_eq!(e, r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#);
    }
}
