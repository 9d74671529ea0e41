//! What a firmware image installs: the profile's rule for the `DeviceInfo.SoftwareVersion` a
//! "1 Firmware Upgrade Image" Download leaves behind once its file was fetched, or whether the
//! image is one of the simulated bad ones (TR-069 A.3.2.8; PROTOCOL.md §8).
//!
//! Pure and sans-IO: the engine fetches the file, then asks [`FirmwareRule::install`] with the
//! Download's URL and the CPE's identity. The answer is a function of (profile seed, CPE index,
//! URL), so a rerun of the same fleet fails the same images on the same CPEs.

use crate::cwmp::FaultCode;
use crate::model::identity::{fnv1a, mix64};
use crate::model::DeviceId;

/// The profile's `firmware:` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirmwareRule {
    /// URL or file-name patterns (`*` matches any run of characters) and the version each
    /// installs; the first match wins.
    pub versions: Vec<VersionMatch>,
    /// Without a matching pattern: take the version from the file name (`gw-2.1.0.bin` → `2.1.0`).
    pub version_from_file_name: bool,
    /// Share (0.0–1.0) of (CPE, image) pairs whose image is bad: the download completes but the
    /// image does not install, TransferComplete reports 9018 and the version stays.
    pub failure_share: f64,
}

/// One `versions:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMatch {
    /// Matched against the whole URL and against its file name.
    pub pattern: Box<str>,
    pub version: Box<str>,
}

/// What installing one image did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// The image installed and runs this SoftwareVersion.
    Version(Box<str>),
    /// The image installed; the rule names no version, so SoftwareVersion stays.
    Unchanged,
    /// A bad image: the TransferComplete fault (9018 File corrupted) and its detail.
    Rejected(FaultCode, &'static str),
}

impl FirmwareRule {
    /// Installs the image fetched from `url` (whose TargetFileName was `target`) on CPE `id`.
    pub fn install(&self, seed: u64, id: DeviceId, url: &str, target: &str) -> Install {
        if self.failure_share > 0.0 {
            let draw = mix64(seed ^ mix64(u64::from(id.0) ^ fnv1a(url).rotate_left(29)));
            if unit(draw) < self.failure_share {
                return Install::Rejected(FaultCode::FileCorrupted, "the image failed its integrity check (simulated bad image)");
            }
        }
        let name = file_name(url);
        for m in &self.versions {
            if glob(&m.pattern, url) || glob(&m.pattern, name) || (!target.is_empty() && glob(&m.pattern, target)) {
                return Install::Version(m.version.clone());
            }
        }
        if self.version_from_file_name {
            let from = if target.is_empty() { name } else { target };
            if let Some(v) = version_in(from) {
                return Install::Version(v.into());
            }
        }
        Install::Unchanged
    }
}

/// A 64-bit draw as a share in [0, 1).
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The last path segment of a URL, without query or fragment.
pub fn file_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

/// The version a file name carries: from the first digit that starts a word (or follows a `v`)
/// whose word is dotted, else the first such digit, to the end, without the file's extensions
/// (`SimGW-181-2.0.1.bin` → `2.0.1`, `SimGW_v3.4.5-rc1.img` → `3.4.5-rc1`, `fw-2.1.0.tar.gz` →
/// `2.1.0`, `fw-20240101.bin` → `20240101`). `None` when the name has no such digit.
pub fn version_in(name: &str) -> Option<&str> {
    let mut stem = name;
    // Extensions are trailing alphabetic segments (`.bin`, `.img`, `.tar.gz`), never a
    // version's own segments (`.0`, `.rc1` keeps its digit).
    while let Some((head, ext)) = stem.rsplit_once('.') {
        if !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_alphabetic()) && !head.is_empty() {
            stem = head;
        } else {
            break;
        }
    }
    let b = stem.as_bytes();
    let starts = (0..b.len()).filter(|&i| {
        b[i].is_ascii_digit()
            && (i == 0
                || !b[i - 1].is_ascii_alphanumeric()
                || (matches!(b[i - 1], b'v' | b'V') && (i == 1 || !b[i - 2].is_ascii_alphanumeric())))
    });
    // A model number before the version (`SimGW-181-2.0.1`) is a word without dots.
    let dotted = |&i: &usize| stem[i..].split(['-', '_']).next().is_some_and(|w| w.contains('.'));
    let mut first = None;
    for i in starts {
        if dotted(&i) {
            return Some(&stem[i..]);
        }
        first.get_or_insert(i);
    }
    first.map(|i| &stem[i..])
}

/// `*`-glob match of the whole `text` (no other metacharacters).
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_file_names() {
        assert_eq!(version_in("gw-2.1.0.bin"), Some("2.1.0"));
        assert_eq!(version_in("SimGW_v3.4.5-rc1.img"), Some("3.4.5-rc1"));
        assert_eq!(version_in("fw-2.1.0.tar.gz"), Some("2.1.0"));
        assert_eq!(version_in("2.0.0"), Some("2.0.0"));
        assert_eq!(version_in("SimGW-181-2.0.1.bin"), Some("2.0.1"), "a model number is no version (found with GenieACS)");
        assert_eq!(version_in("fw-20240101.bin"), Some("20240101"));
        assert_eq!(version_in("abc2.bin"), None, "a digit inside a word starts no version");
        assert_eq!(version_in("firmware.bin"), None);
        assert_eq!(file_name("http://h:1/a/b/gw-2.1.0.bin?x=1#f"), "gw-2.1.0.bin");
    }

    #[test]
    fn globs() {
        assert!(glob("*gw-2.*", "http://h/gw-2.1.bin"));
        assert!(glob("gw.bin", "gw.bin"));
        assert!(!glob("gw.bin", "xgw.bin"));
        assert!(glob("a*b*c", "abbc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(glob("*", ""));
        assert!(!glob("ab*ba", "aba"), "the prefix and suffix may not overlap");
    }

    #[test]
    fn the_first_match_wins_then_the_file_name() {
        let rule = FirmwareRule {
            versions: vec![
                VersionMatch { pattern: "*/golden/*".into(), version: "9.9.9".into() },
                VersionMatch { pattern: "gw-*.bin".into(), version: "never".into() },
            ],
            version_from_file_name: true,
            failure_share: 0.0,
        };
        assert_eq!(rule.install(1, DeviceId(0), "http://h/golden/gw-1.bin", ""), Install::Version("9.9.9".into()));
        assert_eq!(rule.install(1, DeviceId(0), "http://h/x/fw-3.0.img", ""), Install::Version("3.0".into()));
        assert_eq!(rule.install(1, DeviceId(0), "http://h/x/image", "fw-4.0.img"), Install::Version("4.0".into()));
        assert_eq!(rule.install(1, DeviceId(0), "http://h/x/image", ""), Install::Unchanged);
    }

    #[test]
    fn the_failure_share_is_deterministic_and_near_its_value() {
        let rule = FirmwareRule { failure_share: 0.25, version_from_file_name: true, ..Default::default() };
        let bad = |seed| {
            (0..4000).filter(|&i| matches!(rule.install(seed, DeviceId(i), "http://h/fw-2.0.bin", ""), Install::Rejected(..))).count()
        };
        let n = bad(7);
        assert_eq!(n, bad(7), "the same fleet fails the same CPEs");
        assert!((800..1200).contains(&n), "{n} of 4000 at a share of 0.25");
        let all = FirmwareRule { failure_share: 1.0, ..Default::default() };
        assert_eq!(
            all.install(0, DeviceId(3), "u", ""),
            Install::Rejected(FaultCode::FileCorrupted, "the image failed its integrity check (simulated bad image)")
        );
    }
}
