//! Which ACS endpoint and which local source address each CPE uses: several ACS URLs (as behind a
//! load balancer, or a cluster addressed node by node) and a pool of source addresses (ACSes and
//! their load balancers key on the CPE's address). Both are pure functions of the CPE, so a CPE
//! keeps its endpoint and its address in every session (sticky) with no per-CPE memory.
//!
//! It owns the mapping, not the connections: `engine::shard` parses one `Target` per
//! (endpoint, source) pair and pools connections per pair.

use std::net::IpAddr;

use crate::model::identity::{fnv1a, mix64};

/// How CPEs are spread over the endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mapping {
    /// CPE rank `r` (its place in the run, 0-based) → endpoint `r mod n`.
    #[default]
    RoundRobin,
    /// A hash of the CPE's serial number → endpoint, as a load balancer hashing on a device id
    /// would: the same serial always lands on the same endpoint, whatever the fleet's size.
    SerialHash,
}

/// The run's ACS endpoints and source addresses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routes {
    /// ACS URLs; empty: the plan's one `acs_url`.
    pub endpoints: Vec<String>,
    pub mapping: Mapping,
    /// Local addresses to bind, CPE rank `r` → `sources[r mod n]`; empty: the system picks.
    pub sources: Vec<IpAddr>,
}

impl Routes {
    /// The number of endpoints (at least 1: the plan's URL).
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len().max(1)
    }

    /// The endpoint index of the CPE of rank `rank` with serial number `serial` (the serial is
    /// read only for [`Mapping::SerialHash`]).
    pub fn endpoint_of(&self, rank: u32, serial: impl FnOnce() -> String) -> usize {
        let n = self.endpoint_count();
        if n == 1 {
            return 0;
        }
        match self.mapping {
            Mapping::RoundRobin => rank as usize % n,
            Mapping::SerialHash => (mix64(fnv1a(&serial())) % n as u64) as usize,
        }
    }

    /// The source address index of the CPE of rank `rank` (`None`: no pool).
    pub fn source_of(&self, rank: u32) -> Option<usize> {
        (!self.sources.is_empty()).then(|| rank as usize % self.sources.len())
    }

    /// A route id for (endpoint, source): the index of its target and its connection pool.
    pub fn route_id(&self, endpoint: usize, source: Option<usize>) -> usize {
        endpoint * self.sources.len().max(1) + source.unwrap_or(0)
    }

    /// The endpoint index and source address of route id `route`.
    pub fn split_route(&self, route: usize) -> (usize, Option<IpAddr>) {
        let n = self.sources.len().max(1);
        (route / n, self.sources.get(route % n).copied())
    }

    /// The number of route ids.
    pub fn route_count(&self) -> usize {
        self.endpoint_count() * self.sources.len().max(1)
    }
}

/// Expands a CIDR block (`127.0.0.0/29`) or a single address into addresses, at most `limit`;
/// for IPv4 blocks wider than /31 the network and broadcast addresses are skipped.
///
/// # Errors
/// Text that is not an address or `address/prefix`, a prefix beyond the family's width, or a
/// block with more than `limit` usable addresses.
pub fn expand_cidr(text: &str, limit: usize) -> Result<Vec<IpAddr>, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr =
        addr.trim().parse().map_err(|_| format!("`{text}` is not an IP address or CIDR block (e.g. 127.0.0.2 or 10.0.0.0/24)"))?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = match prefix {
        None => bits,
        Some(p) => p.trim().parse().ok().filter(|p| *p <= bits).ok_or_else(|| format!("`{text}`: the prefix must be 0 … {bits}"))?,
    };
    let host_bits = bits - prefix;
    if host_bits >= 64 || (1u128 << host_bits) > limit as u128 + 2 {
        return Err(format!("`{text}` holds more than {limit} addresses"));
    }
    let size = 1u128 << host_bits;
    let out: Vec<IpAddr> = match ip {
        IpAddr::V4(v4) => {
            let base = u32::from(v4) as u128 & !(size - 1);
            let (lo, hi) = if host_bits >= 2 { (1, size - 1) } else { (0, size) };
            (lo..hi).map(|i| IpAddr::V4(((base + i) as u32).into())).collect()
        }
        IpAddr::V6(v6) => {
            let base = u128::from(v6) & !(size - 1);
            (0..size).map(|i| IpAddr::V6((base + i).into())).collect()
        }
    };
    if out.len() > limit {
        return Err(format!("`{text}` holds more than {limit} addresses"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_and_hash_are_sticky_and_cover_every_endpoint() {
        let mut r = Routes { endpoints: vec!["http://a/".into(), "http://b/".into()], ..Routes::default() };
        assert_eq!((0..4).map(|k| r.endpoint_of(k, String::new)).collect::<Vec<_>>(), vec![0, 1, 0, 1]);
        r.mapping = Mapping::SerialHash;
        let of = |s: &str| r.endpoint_of(0, || s.to_string());
        assert_eq!(of("FEFEFE000001"), of("FEFEFE000001"));
        let hits = (0..1000).map(|i| of(&format!("SN{i:06}"))).filter(|e| *e == 0).count();
        assert!((400..600).contains(&hits), "{hits}");
        assert_eq!(Routes::default().endpoint_of(7, || unreachable!()), 0);
    }

    #[test]
    fn sources_and_route_ids() {
        let r = Routes {
            endpoints: vec!["http://a/".into(), "http://b/".into()],
            sources: expand_cidr("127.0.0.2", 8).unwrap().into_iter().chain(expand_cidr("127.0.0.3", 8).unwrap()).collect(),
            ..Routes::default()
        };
        assert_eq!(r.source_of(3), Some(1));
        assert_eq!(r.route_count(), 4);
        assert_eq!(r.route_id(1, Some(1)), 3);
        assert_eq!(r.split_route(3), (1, Some("127.0.0.3".parse().unwrap())));
        assert_eq!(Routes::default().split_route(0), (0, None));
        assert_eq!(Routes::default().source_of(3), None);
        assert_eq!(Routes::default().route_id(0, None), 0);
    }

    #[test]
    fn cidr_blocks() {
        let v = expand_cidr("127.0.0.0/29", 64).unwrap();
        assert_eq!(v.first().unwrap().to_string(), "127.0.0.1");
        assert_eq!(v.len(), 6);
        assert_eq!(expand_cidr("127.0.0.8/31", 64).unwrap().len(), 2);
        assert_eq!(expand_cidr("::1", 64).unwrap().len(), 1);
        assert!(expand_cidr("10.0.0.0/8", 1024).unwrap_err().contains("more than 1024"));
        assert!(expand_cidr("10.0.0.0/33", 1024).is_err());
        assert!(expand_cidr("nope", 1024).is_err());
    }
}
