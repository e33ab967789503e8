//! Outbound NAT and forwarding rules, in chains named after this engine's default bridge so
//! several engines (and a dockerd) share the host's tables without touching each other's rules.
//!
//! We exec `iptables`/`iptables-restore` (Debian 12: the nf_tables backend) rather than speak
//! nftables netlink: rules change only when the engine starts or stops and when networks are
//! created or removed, never per container, so the process cost stays off the `docker run`
//! path, and the iptables front-end keeps our rules visible to and compatible with dockerd's.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::driver::NatNet;
use crate::{EngineError, Result};

/// The engine's two chains: `nat`/`BERTH-NAT-<bridge>` jumped to from POSTROUTING and
/// `filter`/`BERTH-FWD-<bridge>` jumped to from the top of FORWARD.
#[derive(Debug, Clone)]
pub(crate) struct Nat {
    nat_chain: String,
    fwd_chain: String,
}

impl Nat {
    pub(crate) fn new(default_bridge: &str) -> Self {
        Self {
            nat_chain: format!("BERTH-NAT-{default_bridge}"),
            fwd_chain: format!("BERTH-FWD-{default_bridge}"),
        }
    }

    /// The `iptables-restore --noflush` input that (re)fills both chains for `nets`.
    pub(crate) fn rules(&self, nets: &[NatNet]) -> String {
        let mut s = format!("*nat\n:{} - [0:0]\n", self.nat_chain);
        for n in nets.iter().filter(|n| !n.internal) {
            s += &format!(
                "-A {} -s {} ! -o {} -j MASQUERADE\n",
                self.nat_chain, n.subnet, n.bridge
            );
        }
        s += &format!("COMMIT\n*filter\n:{} - [0:0]\n", self.fwd_chain);
        // Networks are isolated from each other, as with dockerd: a container reaches another
        // network only through an interface of its own on it (`docker network connect`).
        for a in nets {
            for b in nets.iter().filter(|b| b.bridge != a.bridge) {
                s += &format!(
                    "-A {} -i {} -o {} -j DROP\n",
                    self.fwd_chain, a.bridge, b.bridge
                );
            }
        }
        for n in nets {
            let c = &self.fwd_chain;
            let b = &n.bridge;
            if n.internal {
                s += &format!("-A {c} -i {b} -o {b} -j ACCEPT\n");
                s += &format!("-A {c} -i {b} -j DROP\n-A {c} -o {b} -j DROP\n");
            } else {
                s += &format!(
                    "-A {c} -o {b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
                );
                s += &format!("-A {c} -i {b} -j ACCEPT\n");
            }
        }
        s += "COMMIT\n";
        s
    }

    /// Fills the chains for `nets` and makes sure the built-in chains jump to them.
    pub(crate) async fn apply(&self, nets: &[NatNet]) -> Result<()> {
        restore(&self.rules(nets)).await?;
        self.ensure_jump("nat", "POSTROUTING", &self.nat_chain, false)
            .await?;
        self.ensure_jump("filter", "FORWARD", &self.fwd_chain, true)
            .await
    }

    async fn ensure_jump(&self, table: &str, from: &str, to: &str, first: bool) -> Result<()> {
        if iptables(&["-t", table, "-C", from, "-j", to]).await.is_ok() {
            return Ok(());
        }
        let op = if first { "-I" } else { "-A" };
        iptables(&["-t", table, op, from, "-j", to]).await
    }

    /// Removes the jumps and both chains. Bridges and containers stay; the next `apply`
    /// restores connectivity.
    pub(crate) async fn remove(&self) {
        for (table, from, chain) in [
            ("nat", "POSTROUTING", &self.nat_chain),
            ("filter", "FORWARD", &self.fwd_chain),
        ] {
            // Bounded: a jump is added at most once per engine, but clean up strays too.
            for _ in 0..8 {
                if iptables(&["-t", table, "-D", from, "-j", chain])
                    .await
                    .is_err()
                {
                    break;
                }
            }
            let _ = iptables(&["-t", table, "-F", chain]).await;
            let _ = iptables(&["-t", table, "-X", chain]).await;
        }
    }
}

async fn iptables(args: &[&str]) -> Result<()> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| EngineError::internal(format!("cannot run iptables: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EngineError::internal(format!(
            "iptables {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

async fn restore(input: &str) -> Result<()> {
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| EngineError::internal(format!("cannot run iptables-restore: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(|e| EngineError::internal(format!("iptables-restore: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| EngineError::internal(format!("iptables-restore: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EngineError::internal(format!(
            "iptables-restore: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_masquerade_and_forward_each_network() {
        let nat = Nat::new("bt0");
        let r = nat.rules(&[
            NatNet {
                bridge: "bt0".into(),
                subnet: "10.1.0.0/16".parse().unwrap(),
                internal: false,
            },
            NatNet {
                bridge: "br-abc".into(),
                subnet: "10.2.0.0/24".parse().unwrap(),
                internal: true,
            },
        ]);
        assert!(r.contains(":BERTH-NAT-bt0 - [0:0]\n"));
        assert!(r.contains("-A BERTH-NAT-bt0 -s 10.1.0.0/16 ! -o bt0 -j MASQUERADE\n"));
        assert!(!r.contains("10.2.0.0/24"), "internal networks get no NAT");
        assert!(r.contains("-A BERTH-FWD-bt0 -i bt0 -j ACCEPT\n"));
        assert!(r.contains("-A BERTH-FWD-bt0 -i br-abc -j DROP\n"));
        let isolate = r
            .find("-A BERTH-FWD-bt0 -i bt0 -o br-abc -j DROP\n")
            .unwrap();
        assert!(r.contains("-A BERTH-FWD-bt0 -i br-abc -o bt0 -j DROP\n"));
        let accept = r.find("-A BERTH-FWD-bt0 -i bt0 -j ACCEPT\n").unwrap();
        assert!(isolate < accept, "isolation comes before the accepts");
        assert_eq!(r.matches("COMMIT\n").count(), 2);
    }
}
