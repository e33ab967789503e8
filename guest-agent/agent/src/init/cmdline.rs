//! The `berth.*` arguments the host puts on the kernel command line (see docs/vm-image.md).

/// What the host told the guest at boot.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct BootArgs {
    /// Wall clock at boot, Unix seconds and nanoseconds (`berth.time=<secs>[.<fraction>]`).
    pub(crate) time: Option<(i64, i64)>,
    /// `berth.registry_mirror=<url>[,<url>…]`, repeatable.
    pub(crate) registry_mirrors: Vec<String>,
    /// `berth.insecure_registry=<host:port>[,…]`, repeatable.
    pub(crate) insecure_registries: Vec<String>,
    /// `berth.log=<level>`.
    pub(crate) log_level: Option<String>,
    /// `berth.debug_shell=1`: a shell on the console (development only).
    pub(crate) debug_shell: bool,
    /// `berth.ports=virtio-serial`: the agent's ports are virtio-serial ports, not vsock.
    pub(crate) serial_ports: bool,
}

impl BootArgs {
    /// Parses `/proc/cmdline`. Unknown and malformed `berth.*` arguments are ignored, so an
    /// older guest boots with a newer host.
    pub(crate) fn parse(cmdline: &str) -> Self {
        let mut b = BootArgs::default();
        for word in cmdline.split_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let list = || value.split(',').filter(|s| !s.is_empty()).map(String::from);
            match key {
                "berth.time" => b.time = parse_time(value).or(b.time),
                "berth.registry_mirror" => b.registry_mirrors.extend(list()),
                "berth.insecure_registry" => b.insecure_registries.extend(list()),
                "berth.log" if !value.is_empty() => b.log_level = Some(value.to_string()),
                "berth.debug_shell" => b.debug_shell = matches!(value, "1" | "true" | "yes"),
                "berth.ports" => b.serial_ports = value == "virtio-serial",
                _ => {}
            }
        }
        b
    }
}

/// `<secs>` or `<secs>.<fraction>` → (seconds, nanoseconds).
fn parse_time(value: &str) -> Option<(i64, i64)> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().ok().filter(|s| *s > 0)?;
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain("000000000".chars()).take(9).collect();
    Some((secs, digits.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_berth_arguments() {
        let b = BootArgs::parse(
            "console=ttyS0 quiet berth.time=1763890000.25 berth.registry_mirror=http://10.0.2.2:5000 \
             berth.insecure_registry=a:1,b:2 berth.log=debug berth.debug_shell=1 \
             berth.ports=virtio-serial\n",
        );
        assert_eq!(b.time, Some((1_763_890_000, 250_000_000)));
        assert_eq!(b.registry_mirrors, ["http://10.0.2.2:5000"]);
        assert_eq!(b.insecure_registries, ["a:1", "b:2"]);
        assert_eq!(b.log_level.as_deref(), Some("debug"));
        assert!(b.debug_shell);
        assert!(b.serial_ports);
        assert!(!BootArgs::parse("berth.ports=vsock").serial_ports);
    }

    #[test]
    fn parse_ignores_unknown_and_malformed() {
        let b =
            BootArgs::parse("berth.time=soon berth.time=-5 berth.nope=1 berth.log= root=/dev/vda");
        assert_eq!(b, BootArgs::default());
    }

    #[test]
    fn parse_repeats_and_splits_lists() {
        let b = BootArgs::parse(
            "berth.registry_mirror=http://a,http://b berth.registry_mirror=http://c",
        );
        assert_eq!(b.registry_mirrors, ["http://a", "http://b", "http://c"]);
    }

    #[test]
    fn parse_time_without_fraction() {
        assert_eq!(parse_time("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(parse_time("1700000000.1x"), None);
    }
}
