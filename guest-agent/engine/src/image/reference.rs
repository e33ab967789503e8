//! Image references, parsed and normalised like Docker's `reference.ParseNormalizedNamed`:
//! `busybox` → `docker.io/library/busybox:latest`, `localhost:5000/x/y:t`, `name@sha256:…`.

use std::fmt;

use crate::{EngineError, Result};

/// Docker Hub's canonical domain.
pub const DOCKER_HUB: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host (with port), `docker.io` for Hub.
    pub domain: String,
    /// Repository path inside the registry (`library/busybox`).
    pub path: String,
    pub tag: Option<String>,
    /// `sha256:<hex>`.
    pub digest: Option<String>,
}

fn invalid(s: &str) -> EngineError {
    EngineError::invalid(format!("invalid reference format: {s}"))
}

fn is_domain(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or any number of "-".
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// True for `sha256:<64 hex>`.
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'[' | b']' | b':'));
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

impl Reference {
    /// Parses `s`; a name without tag or digest keeps `tag: None` (see [`Reference::with_default_tag`]).
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Err(invalid(s));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(invalid(s));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // The tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(invalid(s));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if is_domain(first) => {
                if !valid_domain(first) {
                    return Err(invalid(s));
                }
                let d = if first == "index.docker.io" {
                    DOCKER_HUB
                } else {
                    first
                };
                (d.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if path.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(EngineError::invalid(format!(
                "invalid reference format: repository name ({path}) must be lowercase"
            )));
        }
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(invalid(s));
        }
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Ok(Self {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Adds the `latest` tag when the reference names neither tag nor digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.into());
        }
        self
    }

    /// `docker.io/library/busybox`
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `busybox` for Hub's library images, `user/x` for other Hub images, the full name otherwise.
    pub fn familiar_name(&self) -> String {
        if self.domain == DOCKER_HUB {
            self.path
                .strip_prefix("library/")
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// `busybox:latest`, `busybox@sha256:…` (digest wins over tag, as Docker shows it).
    pub fn familiar(&self) -> String {
        self.suffixed(&self.familiar_name())
    }

    fn suffixed(&self, name: &str) -> String {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => format!("{name}@{d}"),
            (Some(t), None) => format!("{name}:{t}"),
            (None, None) => name.to_string(),
        }
    }

    /// The tag or digest asked of the registry.
    pub fn tag_or_digest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }
}

impl fmt::Display for Reference {
    /// The canonical form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.suffixed(&self.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Reference::parse(s).unwrap().with_default_tag().to_string()
    }

    #[test]
    fn hub_names_are_normalised() {
        assert_eq!(canon("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(canon("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(
            canon("docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            canon("index.docker.io/user/app:v1"),
            "docker.io/user/app:v1"
        );
        assert_eq!(canon("user/app"), "docker.io/user/app:latest");
    }

    #[test]
    fn registries_with_ports_and_digests() {
        let r = Reference::parse("localhost:5000/x/y:t").unwrap();
        assert_eq!(
            (r.domain.as_str(), r.path.as_str()),
            ("localhost:5000", "x/y")
        );
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert_eq!(r.familiar(), "localhost:5000/x/y:t");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}"))
            .unwrap()
            .with_default_tag();
        assert_eq!(r.tag, None);
        assert_eq!(r.familiar(), format!("busybox@{d}"));
        assert_eq!(r.tag_or_digest(), d);
        let r = Reference::parse("127.0.0.1:5000/busybox").unwrap();
        assert_eq!(r.path, "busybox");
        assert_eq!(r.familiar_name(), "127.0.0.1:5000/busybox");
    }

    #[test]
    fn familiar_keeps_user_repos() {
        assert_eq!(
            Reference::parse("user/app:1").unwrap().familiar(),
            "user/app:1"
        );
        assert_eq!(
            Reference::parse("busybox:1").unwrap().familiar(),
            "busybox:1"
        );
    }

    #[test]
    fn invalid_references_are_rejected() {
        for s in [
            "",
            "Busybox",
            "a//b",
            "a:b:c/d",
            "x@sha256:zz",
            "-a",
            "a:",
            "a b",
        ] {
            assert!(Reference::parse(s).is_err(), "{s}");
        }
        let e = Reference::parse("Busybox").unwrap_err();
        assert!(e.message().contains("must be lowercase"), "{}", e.message());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn component() -> impl Strategy<Value = String> {
            "[a-z0-9]{1,6}([._-][a-z0-9]{1,6}){0,2}"
        }

        /// References as users write them: optional registry, one to three path components,
        /// optional tag and digest.
        fn written() -> impl Strategy<Value = String> {
            (
                prop::option::of(prop::sample::select(vec![
                    "localhost",
                    "localhost:5000",
                    "127.0.0.1:5000",
                    "index.docker.io",
                    "docker.io",
                    "[::1]:5000",
                ])),
                prop::collection::vec(component(), 1..4),
                prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
                prop::option::of("[0-9a-f]{64}"),
            )
                .prop_map(|(domain, mut path, tag, digest)| {
                    // Without a registry, a first component with a dot would name one.
                    if domain.is_none() && path.len() > 1 {
                        path[0] = path[0].replace('.', "-");
                    }
                    let mut s = domain.map(|d| format!("{d}/")).unwrap_or_default();
                    s.push_str(&path.join("/"));
                    if let Some(t) = tag {
                        s.push(':');
                        s.push_str(&t);
                    }
                    if let Some(d) = digest {
                        s.push_str("@sha256:");
                        s.push_str(&d);
                    }
                    s
                })
        }

        /// What the canonical form keeps of `r`: the digest wins over the tag.
        fn shown(r: &Reference) -> Reference {
            let mut r = r.clone();
            if r.digest.is_some() {
                r.tag = None;
            }
            r
        }

        fn check_round_trip(r: &Reference) -> Result<(), TestCaseError> {
            let again = Reference::parse(&r.to_string()).unwrap();
            prop_assert_eq!(&again, &shown(r));
            // Docker's familiar form is ambiguous for a Hub path that starts like a registry
            // (`docker.io/0.0/a` shows as `0.0/a`); dockerd shows it so too.
            let first = r.path.split('/').next().unwrap_or_default();
            if r.domain != DOCKER_HUB || !is_domain(first) {
                let familiar = Reference::parse(&r.familiar()).unwrap();
                prop_assert_eq!(&familiar, &shown(r));
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn any_text_parses_or_errors(s in "[a-zA-Z0-9._:/@\\[\\]-]{0,40}|\\PC{0,40}") {
                if let Ok(r) = Reference::parse(&s) {
                    check_round_trip(&r)?;
                }
            }

            #[test]
            fn written_references_parse_and_format_back(s in written()) {
                let r = Reference::parse(&s).unwrap();
                check_round_trip(&r)?;
            }
        }
    }
}
