//! Building images from the app: what the user asks ([`BuildRequest`], checked and turned into
//! `POST /build` parameters here), the context ([`context`], honouring `.dockerignore` by
//! [`ignore`]) and the kept builds ([`history`]). The command is `commands::build`.

pub mod context;
pub mod history;
pub mod ignore;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::commands::image_detail::validate_tag_name;
use crate::error::{AppError, Result};

/// The Build form, as typed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BuildRequest {
    /// The context folder.
    pub context: String,
    /// The Dockerfile: empty for `Dockerfile` in the context, relative to the context, or
    /// absolute (inside or outside it).
    pub dockerfile: String,
    /// Names to tag the image with, separated by commas or spaces.
    pub tags: String,
    /// `KEY=value`, one a line.
    pub build_args: String,
    pub target: String,
    pub no_cache: bool,
    pub pull: bool,
}

/// The tags of a request, each checked as `docker build -t` checks it.
pub fn tags(r: &BuildRequest) -> Result<Vec<String>> {
    r.tags
        .split([',', ' ', '\n', '\t'])
        .filter(|t| !t.is_empty())
        .map(|t| validate_tag_name(t).map(|_| t.to_string()))
        .collect()
}

/// The build args of a request. A name without `=value` is refused (the CLI would take it from
/// its environment, which the app's is not).
pub fn build_args(r: &BuildRequest) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for line in r
        .build_args
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let Some((k, v)) = line.split_once('=') else {
            return Err(AppError::Invalid(format!(
                "build arg {line:?} has no value: write it as {line}=value"
            )));
        };
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(AppError::Invalid(format!(
                "invalid build arg name in {line:?}"
            )));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_and_are_checked() {
        let r = BuildRequest {
            tags: "app:1, 127.0.0.1:5000/team/app:v2\nother".into(),
            ..BuildRequest::default()
        };
        assert_eq!(
            tags(&r).unwrap(),
            ["app:1", "127.0.0.1:5000/team/app:v2", "other"]
        );
        let bad = BuildRequest {
            tags: "App:1".into(),
            ..BuildRequest::default()
        };
        assert_eq!(tags(&bad).unwrap_err().code().as_str(), "invalid");
    }

    #[test]
    fn build_args_need_a_value() {
        let r = BuildRequest {
            build_args: "A=1\n\n B = two=2 \n".into(),
            ..BuildRequest::default()
        };
        let a = build_args(&r).unwrap();
        assert_eq!(a["A"], "1");
        assert_eq!(a["B"], " two=2");
        let bad = BuildRequest {
            build_args: "ONLY_NAME".into(),
            ..BuildRequest::default()
        };
        assert!(build_args(&bad)
            .unwrap_err()
            .to_string()
            .contains("has no value"));
    }
}
