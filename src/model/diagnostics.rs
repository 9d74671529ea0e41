//! The profile's `diagnostics:` settings: the simulated network that TR-143 diagnostics measure
//! (latency distribution, loss, failure share, path length, link rates). Read by
//! `cpe::diagnostics`, which draws each test's results from them.
//!
//! ```yaml
//! diagnostics:
//!   latency_ms: {median: 20, spread: 0.4}   # log-normal RTT: median × e^(spread·z), z ~ N(0,1)
//!   loss: 0.01                              # share of echoes/probes that get no answer
//!   failure_share: 0.02                     # share of tests that end in an Error_* state
//!   hops: {min: 4, max: 12}                 # TraceRoute path length
//!   download_kbps: {median: 100000, spread: 0.3}
//!   upload_kbps: {median: 20000, spread: 0.3}
//!   download_bytes: 10000000                # what a DownloadDiagnostics test receives
//! ```

/// A log-normal distribution given by its median and the standard deviation of its logarithm.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogNormal {
    pub median: f64,
    #[serde(default)]
    pub spread: f64,
}

impl LogNormal {
    /// The value at standard-normal quantile `z`.
    pub fn at(&self, z: f64) -> f64 {
        self.median * (self.spread * z).exp()
    }
}

/// A whole-number range, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub min: u32,
    pub max: u32,
}

/// The simulated network the diagnostics measure.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiagnosticsSettings {
    /// Round-trip time of one echo or probe, in ms.
    pub latency_ms: LogNormal,
    /// Share (0–1) of echoes and probes lost.
    pub loss: f64,
    /// Share (0–1) of tests that fail as a whole (the kind's usual Error_* state).
    pub failure_share: f64,
    /// How many hops a TraceRoute finds.
    pub hops: Range,
    /// DownloadDiagnostics throughput, kbit/s.
    pub download_kbps: LogNormal,
    /// UploadDiagnostics throughput, kbit/s.
    pub upload_kbps: LogNormal,
    /// Bytes a DownloadDiagnostics test receives (the file behind DownloadURL is not fetched).
    pub download_bytes: u64,
}

impl Default for DiagnosticsSettings {
    fn default() -> Self {
        DiagnosticsSettings {
            latency_ms: LogNormal { median: 20.0, spread: 0.3 },
            loss: 0.0,
            failure_share: 0.0,
            hops: Range { min: 4, max: 12 },
            download_kbps: LogNormal { median: 100_000.0, spread: 0.2 },
            upload_kbps: LogNormal { median: 20_000.0, spread: 0.2 },
            download_bytes: 10_000_000,
        }
    }
}

impl DiagnosticsSettings {
    /// Checks ranges.
    ///
    /// # Errors
    /// The key and why (shares outside 0–1, non-positive medians, an empty or inverted range).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let share = |k: &'static str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err((k, format!("{v} is not a share between 0 and 1")))
            }
        };
        share("diagnostics.loss", self.loss)?;
        share("diagnostics.failure_share", self.failure_share)?;
        for (k, d, most) in [
            ("diagnostics.latency_ms", self.latency_ms, 60_000.0),
            ("diagnostics.download_kbps", self.download_kbps, 1e9),
            ("diagnostics.upload_kbps", self.upload_kbps, 1e9),
        ] {
            if !(d.median > 0.0 && d.median <= most && (0.0..=3.0).contains(&d.spread)) {
                return Err((k, format!("median must be above 0 and at most {most}, spread between 0 and 3")));
            }
        }
        if self.hops.min == 0 || self.hops.min > self.hops.max || self.hops.max > 255 {
            return Err(("diagnostics.hops", "needs 1 ≤ min ≤ max ≤ 255".into()));
        }
        if self.download_bytes == 0 || self.download_bytes > 1 << 40 {
            return Err(("diagnostics.download_bytes", "must be between 1 and 2^40".into()));
        }
        Ok(())
    }
}
