//! Registry credentials: the `X-Registry-Auth` header and `WWW-Authenticate` challenges.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use berth_docker_api::auth::AuthConfig;

use crate::{EngineError, Result};

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);

/// Credentials for one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// OAuth refresh token (`identitytoken`), sent to the token endpoint instead of a password.
    pub identity_token: String,
    /// A ready bearer token (`registrytoken`).
    pub registry_token: String,
}

impl Credentials {
    /// Credentials from an `AuthConfig`; `None` when it carries none (`{}`).
    pub fn from_auth_config(c: &AuthConfig) -> Option<Self> {
        let (mut username, mut password) = (c.username.clone(), c.password.clone());
        if username.is_empty() && !c.auth.is_empty() {
            // `auth` is base64("user:password").
            if let Some((u, p)) = STANDARD_LENIENT
                .decode(c.auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.split_once(':')
                        .map(|(u, p)| (u.to_string(), p.to_string()))
                })
            {
                username = u;
                password = p;
            }
        }
        let creds = Self {
            username,
            password,
            identity_token: c.identitytoken.clone(),
            registry_token: c.registrytoken.clone(),
        };
        (creds != Self::default()).then_some(creds)
    }

    /// `Authorization: Basic …` value.
    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", self.username, self.password))
        )
    }
}

/// Decodes `X-Registry-Auth`: base64url JSON (padding optional, standard base64 tolerated).
/// Empty, `{}` and credential-less configs give `None`.
pub fn decode_registry_auth(header: &str) -> Result<Option<AuthConfig>> {
    let h = header.trim();
    if h.is_empty() {
        return Ok(None);
    }
    let bytes = URL_SAFE_LENIENT
        .decode(h)
        .or_else(|_| STANDARD_LENIENT.decode(h))
        .or_else(|_| STANDARD_NO_PAD.decode(h.trim_end_matches('=')))
        .map_err(|e| EngineError::invalid(format!("invalid X-Registry-Auth header: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let cfg: AuthConfig = serde_json::from_slice(&bytes)
        .map_err(|e| EngineError::invalid(format!("invalid X-Registry-Auth header: {e}")))?;
    Ok((cfg != AuthConfig::default()).then_some(cfg))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    for (k, v) in parse_params(rest) {
        match k.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(v),
            "service" => service = Some(v),
            "scope" => scope = Some(v),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

/// `k="v", k2=v2` with quoted values that may contain commas.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_string(), val.trim().to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_auth_accepts_all_encodings() {
        assert_eq!(decode_registry_auth("e30=").unwrap(), None);
        assert_eq!(decode_registry_auth("e30").unwrap(), None);
        assert_eq!(decode_registry_auth("").unwrap(), None);
        let json = r#"{"username":"u","password":"p?>","serveraddress":"localhost:5000"}"#;
        let url = base64::engine::general_purpose::URL_SAFE.encode(json);
        let std = base64::engine::general_purpose::STANDARD.encode(json);
        let nopad = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        assert_ne!(url, std, "test input must differ between alphabets");
        for h in [url, std, nopad] {
            let c = decode_registry_auth(&h).unwrap().unwrap();
            assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
            assert_eq!(c.serveraddress, "localhost:5000");
        }
        assert!(decode_registry_auth("!!!").is_err());
    }

    #[test]
    fn auth_field_is_split_into_user_and_password() {
        let c = AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("bob:s3:cret"),
            ..AuthConfig::default()
        };
        let cr = Credentials::from_auth_config(&c).unwrap();
        assert_eq!(
            (cr.username.as_str(), cr.password.as_str()),
            ("bob", "s3:cret")
        );
        assert!(Credentials::from_auth_config(&AuthConfig::default()).is_none());
    }

    #[test]
    fn challenges_are_parsed() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Digest x=1"), None);
    }
}
