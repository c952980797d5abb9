//! Who is asking: the language, the session cookie and the CSRF checks.
//!
//! The session cookie holds a random 256-bit secret (the store keeps its
//! SHA-256); it is `HttpOnly`, `SameSite=Strict`, `Path=/` and, behind
//! https, `Secure` with the `__Host-` prefix. A signed-in page gets a
//! [`Ctx`] whose `session` is the store's [`Session`], a principal with the
//! same role rules as a token. Every POST carries a CSRF token: the
//! session's own once signed in, before that a double-submit value from a
//! `SameSite=Strict` cookie; a wrong or missing token is a 403 page.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};
use tapis_store::Session;

use crate::WebState;
use crate::error::WebError;
use crate::i18n::Lang;

/// A cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The session cookie's name (with the `__Host-` prefix behind https).
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-tapis_session"
    } else {
        "tapis_session"
    }
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Strict; Path=/`, `Secure`
/// when asked, and a max age (0 clears it; `None`, a browser session).
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).expect("cookie values are base64url or fixed text")
}

/// Failed sign-ins per client address, in memory only (addresses are
/// never written down): after `failures_per_address` in 15 minutes the
/// address is refused until the window ends.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

const WINDOW: Duration = Duration::from_secs(15 * 60);

impl Throttle {
    fn key(ip: IpAddr) -> IpAddr {
        // IPv6 by /64, as the edge counts connections
        match ip {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            v4 => v4,
        }
    }

    pub fn blocked(&self, ip: IpAddr, limit: u32) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        map.get(&Self::key(ip)).is_some_and(|(n, _)| *n >= limit)
    }

    pub fn fail(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let e = map.entry(Self::key(ip)).or_insert((0, Instant::now()));
        e.0 += 1;
    }
}

/// What every handler knows about the request.
pub struct Ctx {
    pub lang: Lang,
    pub session: Option<Session>,
    /// The session cookie's secret, when it names a live session.
    pub secret: Option<String>,
    /// A session cookie was sent but names no live session (expired).
    pub expired: bool,
    pub peer: Option<IpAddr>,
    /// The path and query, for the language switch to come back to.
    pub here: String,
    /// The pre-session CSRF cookie, if the browser has one.
    pub form_cookie: Option<String>,
    pub state: WebState,
}

impl FromRequestParts<WebState> for Ctx {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Ctx, WebError> {
        let lang = Lang::choose(&parts.headers);
        let name = session_cookie_name(state.config.secure_cookies);
        let sent = cookie(&parts.headers, name).filter(|v| !v.is_empty());
        let mut session = None;
        let mut secret = None;
        if let Some(s) = &sent {
            session = state
                .store
                .session(s, state.config.session)
                .await
                .map_err(|e| WebError::from_store(lang, e))?;
            if session.is_some() {
                secret = Some(s.clone());
            }
        }
        Ok(Ctx {
            lang,
            expired: sent.is_some() && session.is_none(),
            session,
            secret,
            peer: parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
            here: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
            form_cookie: cookie(&parts.headers, "tapis_form"),
            state: state.clone(),
        })
    }
}

impl Ctx {
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    pub fn tf(&self, key: &str, args: &[(&str, &str)]) -> String {
        self.lang.tf(key, args)
    }

    /// The signed-in session, or a redirect to the sign-in page (saying
    /// the session ended when a cookie was sent).
    pub fn require(&self) -> Result<&Session, WebError> {
        self.session.as_ref().ok_or_else(|| {
            let mut to = format!("/signin?next={}", url_encode(&self.here));
            if self.expired {
                to.push_str("&expired=1");
            }
            WebError::redirect(&to)
        })
    }

    /// The CSRF token a form must carry: the session's once signed in,
    /// else the pre-session cookie's (made by [`Ctx::form_token`]).
    pub fn csrf(&self) -> String {
        match &self.session {
            Some(s) => s.csrf.clone(),
            None => self.form_cookie.clone().unwrap_or_default(),
        }
    }
}

/// For a form shown before sign-in: the double-submit token and, when the
/// browser has none yet, the cookie to set.
pub fn form_token(cx: &Ctx) -> (String, Option<HeaderValue>) {
    match &cx.form_cookie {
        Some(v) if v.len() >= 32 => (v.clone(), None),
        _ => {
            let v = random_token();
            let c = set_cookie("tapis_form", &v, cx.state.config.secure_cookies, None);
            (v, Some(c))
        }
    }
}

pub fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Refuse a POST whose `csrf` field does not match (compared in constant
/// time over SHA-256 digests).
pub fn check_csrf(cx: &Ctx, form: &Form) -> Result<(), WebError> {
    let want = cx.csrf();
    let got = form.get("csrf");
    let a = Sha256::digest(want.as_bytes());
    let b = Sha256::digest(got.as_bytes());
    let same = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0;
    if want.is_empty() || !same {
        return Err(WebError::csrf(cx.lang));
    }
    Ok(())
}

/// A submitted form's fields, in order (repeated names kept).
#[derive(Debug, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// A query string's fields.
pub fn query(uri: &axum::http::Uri) -> Form {
    Form::parse(uri.query().unwrap_or("").as_bytes())
}

pub fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A local path to return to (never another site: `//host` and
/// `/\host` are refused).
pub fn local_path(raw: &str) -> String {
    if raw.starts_with('/') && !raw.starts_with("//") && !raw.starts_with("/\\") {
        raw.to_owned()
    } else {
        "/".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_and_written_strictly() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; tapis_session=abc; b=2".parse().expect("h"),
        );
        assert_eq!(cookie(&h, "tapis_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "session"), None);
        let c = set_cookie("__Host-tapis_session", "x", true, Some(0));
        assert_eq!(
            c.to_str().expect("ascii"),
            "__Host-tapis_session=x; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0"
        );
    }

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path("/notices?state=open"), "/notices?state=open");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(local_path("https://evil.example"), "/");
    }

    #[test]
    fn an_address_is_throttled_after_its_failures() {
        let t = Throttle::default();
        let ip: IpAddr = "2001:db8::1".parse().expect("ip");
        let same64: IpAddr = "2001:db8::2".parse().expect("ip");
        for _ in 0..3 {
            assert!(!t.blocked(ip, 3));
            t.fail(ip);
        }
        assert!(t.blocked(same64, 3), "the /64 shares the count");
        assert!(!t.blocked("192.0.2.1".parse().expect("ip"), 3));
    }
}
