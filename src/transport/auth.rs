//! Credentials for the ACS and the challenge state cached per CPE (PROTOCOL.md §1.5).
//!
//! Basic, or Digest (RFC 7616: MD5 and MD5-sess, qop `auth` preferred, `auth-int` when it is the
//! only choice) through the `digest_auth` crate. After a challenge, later requests carry
//! `Authorization` up front with an increasing `nc`; a new 401 (GenieACS binds its nonce to the
//! socket) replaces the cached challenge and the request is sent once more.

use base64_encode::encode as b64;

/// A username and password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<hidden>").finish()
    }
}

/// What the ACS asked for.
#[derive(Debug, Clone)]
enum Challenge {
    Basic,
    Digest(Box<digest_auth::WwwAuthenticateHeader>),
}

/// The auth state one CPE keeps across its requests and sessions.
#[derive(Debug, Clone, Default)]
pub struct AuthState {
    challenge: Option<Challenge>,
}

impl AuthState {
    /// Learns the scheme from a 401's `WWW-Authenticate` values, preferring Digest.
    ///
    /// # Errors
    /// A description when no value is a Basic or parsable Digest challenge.
    pub fn learn<'h>(&mut self, values: impl Iterator<Item = &'h str>) -> Result<(), String> {
        let mut basic = false;
        let mut last_err = String::from("no WWW-Authenticate header");
        for v in values {
            let t = v.trim_start();
            if t.len() >= 6 && t[..6].eq_ignore_ascii_case("digest") {
                match digest_auth::parse(&format!("Digest{}", &t[6..])) {
                    Ok(mut prompt) => {
                        if let Some(q) = prompt.qop.as_mut() {
                            // Prefer plain `auth`: every peer supports it and it does not hash bodies.
                            if q.contains(&digest_auth::Qop::AUTH) {
                                *q = vec![digest_auth::Qop::AUTH];
                            }
                        }
                        self.challenge = Some(Challenge::Digest(Box::new(prompt)));
                        return Ok(());
                    }
                    Err(e) => last_err = format!("unparsable Digest challenge: {e}"),
                }
            } else if t.len() >= 5 && t[..5].eq_ignore_ascii_case("basic") {
                basic = true;
            } else {
                last_err = format!("unsupported scheme in `{}`", t.split_whitespace().next().unwrap_or(""));
            }
        }
        if basic {
            self.challenge = Some(Challenge::Basic);
            return Ok(());
        }
        Err(last_err)
    }

    /// Whether a challenge is known (the CPE answers with credentials up front).
    pub fn is_set(&self) -> bool {
        self.challenge.is_some()
    }

    /// Forgets the challenge (new ACS, factory reset).
    pub fn reset(&mut self) {
        self.challenge = None;
    }

    /// The `Authorization` value for a POST of `body` to `uri`, once a challenge is known.
    pub fn authorization(&mut self, creds: &Credentials, uri: &str, body: &[u8]) -> Option<String> {
        self.authorization_for("POST", creds, uri, body)
    }

    /// The `Authorization` value for a request with `method`, once a challenge is known.
    pub fn authorization_for(&mut self, method: &str, creds: &Credentials, uri: &str, body: &[u8]) -> Option<String> {
        match self.challenge.as_mut()? {
            Challenge::Basic => Some(basic_value(creds)),
            Challenge::Digest(prompt) => {
                let method = digest_auth::HttpMethod(std::borrow::Cow::Owned(method.to_string()));
                let ctx =
                    digest_auth::AuthContext::new_with_method(creds.username.as_str(), creds.password.as_str(), uri, Some(body), method);
                prompt.respond(&ctx).ok().map(|h| h.to_header_string())
            }
        }
    }
}

/// The `Authorization` value for Basic (RFC 7617).
pub fn basic_value(creds: &Credentials) -> String {
    format!("Basic {}", b64(format!("{}:{}", creds.username, creds.password).as_bytes()))
}

/// Minimal standard base64 (RFC 4648) for Basic credentials.
mod base64_encode {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(input: &[u8]) -> String {
        let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
        for chunk in input.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials { username: "cpe".into(), password: "secret".into() }
    }

    #[test]
    fn basic_is_rfc7617() {
        let mut a = AuthState::default();
        a.learn(["Basic realm=\"GenieACS\""].into_iter()).unwrap();
        assert_eq!(a.authorization(&creds(), "/", b"").unwrap(), "Basic Y3BlOnNlY3JldA==");
        assert_eq!(base64_encode::encode(b"ab"), "YWI=");
        assert_eq!(base64_encode::encode(b"a"), "YQ==");
        assert!(!format!("{:?}", creds()).contains("secret"));
    }

    #[test]
    fn digest_prefers_auth_and_counts_nonces() {
        let mut a = AuthState::default();
        a.learn(["Basic realm=\"x\"", "Digest realm=\"GenieACS\",qop=\"auth,auth-int\",nonce=\"abc\""].into_iter()).unwrap();
        let h1 = a.authorization(&creds(), "/cwmp", b"<x/>").unwrap();
        let h2 = a.authorization(&creds(), "/cwmp", b"").unwrap();
        assert!(h1.starts_with("Digest ") && h1.contains("qop=auth,") && h1.contains("nc=00000001"), "{h1}");
        assert!(h2.contains("nc=00000002"), "{h2}");
        // A server can recompute the response from the header it received.
        let mut parsed = digest_auth::AuthorizationHeader::parse(&h1).unwrap();
        let claimed = parsed.response.clone();
        parsed.digest(&digest_auth::AuthContext::new_post("cpe", "secret", "/cwmp", Some(&b"<x/>"[..])));
        assert_eq!(parsed.response, claimed);
    }

    #[test]
    fn unusable_challenges_are_named() {
        let mut a = AuthState::default();
        assert!(a.learn(["Negotiate abc"].into_iter()).unwrap_err().contains("Negotiate"));
        assert!(a.learn(std::iter::empty()).is_err());
        assert!(a.authorization(&creds(), "/", b"").is_none());
    }
}
