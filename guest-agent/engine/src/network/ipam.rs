//! Address management: subnets of bridge networks, free addresses within them, pools for new
//! networks, and the MAC address dockerd derives from an IPv4 address.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::{EngineError, Result};

/// A bridge subnet and the gateway address the bridge itself holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Subnet {
    pub(crate) net: Ipv4Net,
    pub(crate) gateway: Ipv4Addr,
}

impl Subnet {
    /// Parses a bridge address in CIDR form (`172.30.0.1/16`, as `--bip` takes it): the
    /// address is the gateway, the prefix the subnet.
    pub(crate) fn from_bip(bip: &str) -> Result<Self> {
        let ifnet: Ipv4Net = bip
            .parse()
            .map_err(|_| EngineError::invalid(format!("invalid bridge address {bip:?}")))?;
        let net = ifnet.trunc();
        let gateway = if ifnet.addr() == net.network() {
            first_host(net)?
        } else {
            ifnet.addr()
        };
        Ok(Self { net, gateway })
    }

    /// A subnet given as `Subnet`/`Gateway` strings (IPAM config); the gateway defaults to the
    /// first host address.
    pub(crate) fn from_parts(subnet: &str, gateway: &str) -> Result<Self> {
        let net: Ipv4Net = subnet
            .parse()
            .map_err(|_| EngineError::invalid(format!("invalid subnet {subnet:?}")))?;
        if net.trunc() != net {
            return Err(EngineError::invalid(format!(
                "invalid subnet {subnet}: it should be {}",
                net.trunc()
            )));
        }
        let gateway = if gateway.is_empty() {
            first_host(net)?
        } else {
            let gw: Ipv4Addr = gateway
                .parse()
                .map_err(|_| EngineError::invalid(format!("invalid gateway {gateway:?}")))?;
            if !net.contains(&gw) {
                return Err(EngineError::invalid(format!(
                    "no matching subnet for gateway {gw}"
                )));
            }
            gw
        };
        Ok(Self { net, gateway })
    }

    /// The first address (of `range`, if given, else of the subnet) that is neither the
    /// subnet's network or broadcast address, the gateway nor in `used`.
    pub(crate) fn allocate(
        &self,
        range: Option<Ipv4Net>,
        used: &HashSet<Ipv4Addr>,
    ) -> Option<Ipv4Addr> {
        let (net, bcast) = (self.net.network(), self.net.broadcast());
        let from = range.filter(|r| self.net.contains(r)).unwrap_or(self.net);
        (u32::from(from.network())..=u32::from(from.broadcast()))
            .map(Ipv4Addr::from)
            .find(|a| *a != net && *a != bcast && *a != self.gateway && !used.contains(a))
    }

    /// Checks an `--ip-range` against the subnet (dockerd's text).
    pub(crate) fn range(&self, range: &str) -> Result<Ipv4Net> {
        let r: Ipv4Net = range
            .parse()
            .map_err(|_| EngineError::invalid(format!("invalid CIDR address: {range}")))?;
        if !self.net.contains(&r) {
            return Err(EngineError::invalid(format!(
                "no matching subnet for range {range}"
            )));
        }
        Ok(r.trunc())
    }
}

fn first_host(net: Ipv4Net) -> Result<Ipv4Addr> {
    net.hosts()
        .next()
        .ok_or_else(|| EngineError::invalid(format!("subnet {net} has no host addresses")))
}

/// dockerd's MAC for an IPv4 endpoint: `02:42` followed by the four address bytes.
pub(crate) fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`) as bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

pub(crate) fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Candidate subnets for new networks, in dockerd's order: `172.17`…`172.31` as /16, then
/// `192.168.0.0/16` cut into /20s.
fn pool() -> impl Iterator<Item = Ipv4Net> {
    let b = (17u8..=31).filter_map(|i| Ipv4Net::new(Ipv4Addr::new(172, i, 0, 0), 16).ok());
    let c = (0u8..16).filter_map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).ok());
    b.chain(c)
}

/// The first pool subnet that overlaps none of `taken` (routes, host addresses, other
/// networks). A default route (`/0`) is not a conflict.
pub(crate) fn pick_subnet(taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    pool().find(|cand| {
        !taken
            .iter()
            .filter(|t| t.prefix_len() > 0)
            .any(|t| t.contains(cand) || cand.contains(t))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bip_gives_gateway_and_subnet() {
        let s = Subnet::from_bip("172.30.0.1/16").unwrap();
        assert_eq!(s.net.to_string(), "172.30.0.0/16");
        assert_eq!(s.gateway, Ipv4Addr::new(172, 30, 0, 1));
        let s = Subnet::from_bip("10.5.0.0/24").unwrap();
        assert_eq!(s.gateway, Ipv4Addr::new(10, 5, 0, 1));
        assert!(Subnet::from_bip("nonsense").is_err());
    }

    #[test]
    fn allocate_skips_gateway_and_used() {
        let s = Subnet::from_parts("10.0.0.0/29", "").unwrap();
        let mut used = HashSet::new();
        let a = s.allocate(None, &used).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 0, 0, 2));
        used.insert(a);
        assert_eq!(s.allocate(None, &used).unwrap(), Ipv4Addr::new(10, 0, 0, 3));
        for i in 3..=6 {
            used.insert(Ipv4Addr::new(10, 0, 0, i));
        }
        assert_eq!(
            s.allocate(None, &used),
            None,
            "broadcast is never handed out"
        );
        let s = Subnet::from_parts("10.234.5.0/24", "").unwrap();
        let r = s.range("10.234.5.128/25").unwrap();
        assert_eq!(
            s.allocate(Some(r), &HashSet::new()),
            Some(Ipv4Addr::new(10, 234, 5, 128)),
            "dockerd hands out the range's first address"
        );
        assert!(s.range("10.9.0.0/25").is_err());
    }

    #[test]
    fn from_parts_checks_subnet_and_gateway() {
        assert!(Subnet::from_parts("10.0.0.1/24", "").is_err());
        assert!(Subnet::from_parts("10.0.0.0/24", "10.0.1.1").is_err());
        let s = Subnet::from_parts("10.0.0.0/24", "10.0.0.254").unwrap();
        assert_eq!(s.gateway, Ipv4Addr::new(10, 0, 0, 254));
    }

    #[test]
    fn mac_follows_ip() {
        let m = mac_for(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(format_mac(&m), "02:42:ac:11:00:02");
    }

    #[test]
    fn pick_subnet_avoids_taken_ranges() {
        let taken: Vec<Ipv4Net> = [
            "0.0.0.0/0",
            "172.17.0.0/16",
            "172.18.5.0/24",
            "172.19.0.0/16",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(pick_subnet(&taken).unwrap().to_string(), "172.20.0.0/16");
        let all: Vec<Ipv4Net> = vec!["172.16.0.0/12".parse().unwrap()];
        assert_eq!(pick_subnet(&all).unwrap().to_string(), "192.168.0.0/20");
    }
}
