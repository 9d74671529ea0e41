//! The server side of HTTP Digest for Connection Requests (RFC 7616 MD5, qop=auth; PROTOCOL.md
//! §10.1): nonces with an expiry, and replay protection by requiring each nonce's `nc` to grow.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a nonce may be used.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Most live nonces kept (a flood of unauthenticated requests cannot grow memory past this).
const MAX_NONCES: usize = 65_536;

/// Why a Digest answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestError {
    /// Not a parsable Digest `Authorization`.
    Malformed,
    /// A nonce this listener did not issue, or one that expired.
    UnknownNonce,
    /// The same or an older `nc` for this nonce: a replay.
    Replay,
    /// Wrong username, URI or response.
    Mismatch,
}

struct NonceState {
    issued: Instant,
    last_nc: u32,
}

/// Issued nonces.
#[derive(Default)]
pub struct NonceStore {
    nonces: HashMap<String, NonceState>,
    counter: u64,
}

impl NonceStore {
    /// Issues a fresh nonce.
    pub fn issue(&mut self) -> String {
        if self.nonces.len() >= MAX_NONCES {
            let now = Instant::now();
            self.nonces.retain(|_, s| now.duration_since(s.issued) < NONCE_LIFETIME);
            if self.nonces.len() >= MAX_NONCES {
                // Still full (a flood of challenges): the oldest quarter goes, not the ACS's
                // nonce it is answering right now.
                let mut issued: Vec<Instant> = self.nonces.values().map(|s| s.issued).collect();
                let cut = issued.len() / 4;
                let (_, oldest_kept, _) = issued.select_nth_unstable(cut);
                let oldest_kept = *oldest_kept;
                self.nonces.retain(|_, s| s.issued >= oldest_kept);
            }
        }
        self.counter += 1;
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let a = crate::model::identity::mix64(self.counter ^ t ^ (std::process::id() as u64) << 32);
        let nonce = format!("{a:016x}{:016x}", crate::model::identity::mix64(a));
        self.nonces.insert(nonce.clone(), NonceState { issued: Instant::now(), last_nc: 0 });
        nonce
    }

    /// Checks an `Authorization: Digest …` header for a GET of `uri` with these credentials.
    ///
    /// # Errors
    /// [`DigestError`] saying why it was refused.
    pub fn verify(&mut self, header: &str, uri: &str, username: &str, password: &str) -> Result<(), DigestError> {
        let mut h = digest_auth::AuthorizationHeader::parse(header).map_err(|_| DigestError::Malformed)?;
        let state = self.nonces.get_mut(&h.nonce).ok_or(DigestError::UnknownNonce)?;
        if state.issued.elapsed() > NONCE_LIFETIME {
            self.nonces.remove(&h.nonce);
            return Err(DigestError::UnknownNonce);
        }
        use subtle::ConstantTimeEq;
        // Compared in constant time, all of them (no early exit that times the username).
        let same_user = h.username.as_bytes().ct_eq(username.as_bytes());
        let same_uri = h.uri.as_bytes().ct_eq(uri.as_bytes());
        let claimed = std::mem::take(&mut h.response);
        h.digest(&digest_auth::AuthContext::new(username, password, uri));
        let same_response = h.response.as_bytes().ct_eq(claimed.as_bytes());
        if !bool::from(same_user & same_uri & same_response) {
            return Err(DigestError::Mismatch);
        }
        // Only now, for a correct answer, no answer is accepted twice (RFC 7616 §3.4): with a
        // qop (auth or auth-int) each use of a nonce needs a larger nc; without one (RFC 2069
        // style, no nc) a nonce serves once.
        if h.qop.is_none() {
            self.nonces.remove(&h.nonce);
            return Ok(());
        }
        if h.nc <= state.last_nc {
            return Err(DigestError::Replay);
        }
        state.last_nc = h.nc;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(nonce: &str, nc: u32, user: &str, pass: &str, uri: &str) -> String {
        let mut prompt = digest_auth::parse(&format!("Digest realm=\"cpe-sim\", qop=\"auth\", nonce=\"{nonce}\", algorithm=MD5")).unwrap();
        prompt.nc = nc - 1;
        prompt.respond(&digest_auth::AuthContext::new(user, pass, uri)).unwrap().to_header_string()
    }

    #[test]
    fn accepts_once_per_nc_and_refuses_the_rest() {
        let mut s = NonceStore::default();
        let n = s.issue();
        let ok = answer(&n, 1, "u", "p", "/cr");
        assert_eq!(s.verify(&ok, "/cr", "u", "p"), Ok(()));
        assert_eq!(s.verify(&ok, "/cr", "u", "p"), Err(DigestError::Replay));
        assert_eq!(s.verify(&answer(&n, 2, "u", "p", "/cr"), "/cr", "u", "p"), Ok(()));
        assert_eq!(s.verify(&answer(&n, 3, "u", "wrong", "/cr"), "/cr", "u", "p"), Err(DigestError::Mismatch));
        assert_eq!(s.verify(&answer(&n, 4, "u", "p", "/cr/other"), "/cr", "u", "p"), Err(DigestError::Mismatch));
        assert_eq!(s.verify(&answer("feedface", 1, "u", "p", "/cr"), "/cr", "u", "p"), Err(DigestError::UnknownNonce));
        assert_eq!(s.verify("Basic dTpw", "/cr", "u", "p"), Err(DigestError::Malformed));
    }

    #[test]
    fn no_answer_is_accepted_twice_whatever_the_qop() {
        for qop in ["", "qop=\"auth\", ", "qop=\"auth-int\", "] {
            let mut s = NonceStore::default();
            let n = s.issue();
            let mut prompt = digest_auth::parse(&format!("Digest realm=\"cpe-sim\", {qop}nonce=\"{n}\", algorithm=MD5")).unwrap();
            let answer = prompt.respond(&digest_auth::AuthContext::new("u", "p", "/cr")).unwrap().to_header_string();
            assert_eq!(s.verify(&answer, "/cr", "u", "p"), Ok(()), "{qop}");
            assert!(s.verify(&answer, "/cr", "u", "p").is_err(), "replayed with {qop:?}");
        }
    }
}
