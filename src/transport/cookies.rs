//! The cookies of one session, kept and matched by RFC 6265 through the `cookie_store` crate:
//! Domain (a host-only cookie unless the attribute domain-matches the host), Path (the default
//! path is the request path's directory), expiry (`Max-Age`, which wins, or `Expires`; an expired
//! cookie removes the one it names) and Secure.
//!
//! Secure is stricter than `cookie_store` (which treats loopback hosts as secure): a Secure cookie
//! is sent only over https, and one received over plain http is ignored (RFC 6265bis §5.7). The
//! jar belongs to one session and one origin: the session drops it at its end, and on a redirect
//! to another origin (see [`super::client`]).

use cookie_store::{Cookie, CookieExpiration};
use http::HeaderValue;

/// Most cookies a session keeps (RFC 6265 §6.1 asks for at least 50 per domain; an ACS needs
/// one or two). Beyond, new ones are ignored.
pub const MAX_COOKIES: usize = 50;
/// Largest `Cookie` header sent; cookies that would make it longer are left out.
pub const MAX_COOKIE_HEADER: usize = 8192;

/// A session's cookies: `cookie_store`'s parsed [`Cookie`]s (its RFC 6265 rules for Domain,
/// Path and expiry), kept in a short list in the order they are sent (longer paths first, then
/// by name) rather than in `cookie_store`'s map of maps, which costs three keys, three maps and
/// an IDNA pass per cookie and per request: a session holds one or two cookies.
#[derive(Debug, Default)]
pub struct Jar {
    cookies: Vec<Cookie<'static>>,
}

/// Whether `c` has not expired (a session cookie never does; no clock read for it).
fn live(c: &Cookie<'_>) -> bool {
    matches!(c.expires, CookieExpiration::SessionEnd) || !c.is_expired()
}

/// Whether two cookies are the same one (RFC 6265 §5.3 step 11: name, domain and path).
fn same(a: &Cookie<'_>, b: &Cookie<'_>) -> bool {
    a.name() == b.name() && a.domain.as_cow() == b.domain.as_cow() && a.path.as_ref() == b.path.as_ref()
}

impl Jar {
    /// Takes one `Set-Cookie` value received from `url`; what RFC 6265 says to ignore is ignored.
    /// A cookie replaces the one of the same name, domain and path; an expired one removes it.
    pub fn set(&mut self, set_cookie: &str, url: &url::Url) {
        // `Cookie::parse` applies RFC 6265 §5.3: Domain must domain-match the host (else the
        // cookie is ignored), a missing one makes a host-only cookie, the default path.
        let Ok(c) = Cookie::parse(set_cookie, url) else { return };
        if c.secure() == Some(true) && url.scheme() != "https" {
            return;
        }
        let old = self.cookies.iter().position(|o| same(o, &c));
        if !live(&c) {
            if let Some(i) = old {
                self.cookies.remove(i);
            }
            return;
        }
        match old {
            Some(i) => self.cookies[i] = c.into_owned(),
            None => {
                if self.cookies.len() >= MAX_COOKIES {
                    self.cookies.retain(live);
                    if self.cookies.len() >= MAX_COOKIES {
                        return;
                    }
                }
                self.cookies.push(c.into_owned());
                // RFC 6265 §5.4: longer paths first; then by name, so the header is stable.
                self.cookies.sort_by(|a, b| b.path.as_ref().len().cmp(&a.path.as_ref().len()).then_with(|| a.name().cmp(b.name())));
            }
        }
    }

    /// The `Cookie` header for a request to `url`, if any live cookie matches: longer paths
    /// first (RFC 6265 §5.4), then by name. A Secure cookie goes over https only.
    pub fn header(&self, url: &url::Url) -> Option<HeaderValue> {
        // The same walk sizes the buffer exactly, so it becomes the header's bytes with one
        // allocation and no copy.
        let len = self.each_sent(url, |_, _| {});
        if len == 0 {
            return None;
        }
        let mut out = Vec::with_capacity(len);
        self.each_sent(url, |at, c| {
            if at > 0 {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(c.name().as_bytes());
            out.push(b'=');
            out.extend_from_slice(c.value().as_bytes());
        });
        HeaderValue::from_maybe_shared(bytes::Bytes::from(out)).ok()
    }

    /// Calls `f(offset in the header, cookie)` for each live cookie sent to `url` that still fits
    /// in [`MAX_COOKIE_HEADER`], in order; returns the header's length.
    fn each_sent(&self, url: &url::Url, mut f: impl FnMut(usize, &Cookie<'static>)) -> usize {
        let https = url.scheme() == "https";
        let mut len = 0;
        for c in self.cookies.iter().filter(|c| (https || c.secure() != Some(true)) && c.matches(url) && live(c)) {
            let add = if len == 0 { 0 } else { 2 } + c.name().len() + 1 + c.value().len();
            if len + add <= MAX_COOKIE_HEADER {
                f(len, c);
                len += add;
            }
        }
        len
    }

    /// Forgets every cookie (a redirect to another origin).
    pub fn clear(&mut self) {
        self.cookies.clear();
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_jar_holds_at_most_its_limit() {
        let url = url::Url::parse("http://acs.example/").unwrap();
        let mut j = super::Jar::default();
        for i in 0..500 {
            j.set(&format!("c{i}={}", "v".repeat(100)), &url);
        }
        let h = j.header(&url).unwrap();
        assert!(h.len() <= super::MAX_COOKIE_HEADER);
        assert_eq!(h.to_str().unwrap().matches('=').count(), super::MAX_COOKIES);
        // A known cookie is still replaced.
        j.set("c0=new", &url);
        assert!(j.header(&url).unwrap().to_str().unwrap().contains("c0=new"));
    }

    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    fn header(jar: &Jar, u: &str) -> Option<String> {
        jar.header(&url(u)).map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn domain_and_path() {
        let mut jar = Jar::default();
        let from = url("http://acs.example.net:7547/acs/cwmp");
        for s in ["host=1", "dom=1; Domain=example.net", "bad=1; Domain=other.net", "root=1; Path=/", "deep=1; Path=/acs/cwmp"] {
            jar.set(s, &from);
        }
        assert_eq!(header(&jar, "http://acs.example.net:7547/acs/cwmp").as_deref(), Some("deep=1; dom=1; host=1; root=1"));
        assert_eq!(header(&jar, "http://acs.example.net/other").as_deref(), Some("root=1"), "the default path is /acs");
        assert_eq!(header(&jar, "http://b.example.net/acs/x").as_deref(), Some("dom=1"), "host-only cookies stay on their host");
        assert_eq!(header(&jar, "http://other.net/acs/cwmp"), None);
        assert_eq!(header(&jar, "http://acs.example.net/acsx"), Some("root=1".into()), "/acs does not path-match /acsx");
    }

    #[test]
    fn expiry_removes_and_replaces() {
        let mut jar = Jar::default();
        let from = url("http://127.0.0.1:1/");
        for s in ["a=1", "b=1", "c=1; Max-Age=60", "d=1; Expires=Fri, 31 Dec 9999 23:59:59 GMT", "e=1; Max-Age=0"] {
            jar.set(s, &from);
        }
        assert_eq!(header(&jar, "http://127.0.0.1:1/").as_deref(), Some("a=1; b=1; c=1; d=1"));
        jar.set("a=; Max-Age=0", &from);
        jar.set("b=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", &from);
        jar.set("c=2", &from);
        assert_eq!(header(&jar, "http://127.0.0.1:1/").as_deref(), Some("c=2; d=1"));
        jar.clear();
        assert_eq!(header(&jar, "http://127.0.0.1:1/"), None);
    }

    #[test]
    fn secure_only_over_https() {
        let mut jar = Jar::default();
        jar.set("plain=1; Secure", &url("http://127.0.0.1/"));
        assert_eq!(header(&jar, "https://127.0.0.1/"), None, "a Secure cookie from http is ignored");
        jar.set("s=1; Secure", &url("https://127.0.0.1/"));
        jar.set("p=1", &url("https://127.0.0.1/"));
        assert_eq!(header(&jar, "https://127.0.0.1/").as_deref(), Some("p=1; s=1"));
        assert_eq!(header(&jar, "http://127.0.0.1/").as_deref(), Some("p=1"), "not over http, loopback or not");
        assert_eq!(header(&jar, "http://localhost/"), None);
    }
}
