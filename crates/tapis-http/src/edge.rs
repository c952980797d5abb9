//! What a stranger can reach: connections, slow senders, anonymous request
//! rates and live streams, each bounded.
//!
//! The public lookup, the block page, `/healthz`, the public appeal form
//! and transparency pages answer anyone, and every route reads a request
//! head before it knows who is asking. So the edge keeps, per client
//! address (an IPv6 client is its /64: one host has a whole /64 to pick
//! from): a cap on open connections, a token bucket for requests that carry
//! no credentials, and for everyone a deadline to finish sending a request
//! head (a slow-header client is cut off rather than held for minutes). A
//! live event stream is capped per token, so one leaked token cannot hold
//! the server's streams. A public appeal (no token) also spends from a
//! small per-address bucket of its own (`allow_public_form`), and a public
//! flag from another (`allow_public_flag`): a reporter's flags do not use
//! up an appellant's appeals at a shared address, nor the reverse. Every limit
//! has a default that a serious deployment can keep; `EdgeLimits` says
//! each one.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{AppState, error::ApiError};

/// Bounds on what a client can hold or send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeLimits {
    /// Open connections in all (beyond it, new ones are closed at once).
    pub max_connections: usize,
    /// Open connections from one address (an IPv6 /64).
    pub connections_per_address: usize,
    /// Time a client has to send a whole request head.
    pub header_read_timeout: Duration,
    /// Requests without credentials, per address and minute (sustained).
    pub anonymous_per_minute: u32,
    /// How many such requests may come at once before the rate applies.
    pub anonymous_burst: u32,
    /// Live event streams (SSE) open at once with one token.
    pub streams_per_token: usize,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            max_connections: 2048,
            connections_per_address: 64,
            header_read_timeout: Duration::from_secs(10),
            anonymous_per_minute: 120,
            anonymous_burst: 60,
            streams_per_token: 4,
        }
    }
}

/// Most addresses whose rate is tracked at once; past it, addresses whose
/// bucket has refilled are forgotten (they are indistinguishable from new).
const MAX_TRACKED: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The edge's shared counters.
pub struct Edge {
    limits: EdgeLimits,
    total: AtomicUsize,
    conns: Mutex<HashMap<IpAddr, usize>>,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    /// Rejected credentials per address: a made-up token or session cookie
    /// gets past the anonymous bucket, so each 401 spends from this one,
    /// and an address that has emptied it waits like an anonymous one.
    failures: Mutex<HashMap<IpAddr, Bucket>>,
    /// Public appeals sent per address: a few an hour, on top of the
    /// anonymous bucket.
    forms: Mutex<HashMap<IpAddr, Bucket>>,
    /// Public flags sent per address, the same allowance, counted apart.
    flag_forms: Mutex<HashMap<IpAddr, Bucket>>,
    streams: Mutex<HashMap<String, usize>>,
}

/// Public forms (an appeal without an account) per address: a burst of
/// five, then one every ten minutes. Kept in memory only, like every
/// other count here: the address is never written down.
pub const FORMS_BURST: u32 = 5;
pub const FORMS_PER_HOUR: u32 = 6;

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("limits", &self.limits)
            .finish()
    }
}

/// The address a limit counts: IPv4 as it is, IPv6 by its /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a counter lock leaves counts that are at worst
    // slightly off; serving on is better than refusing everyone.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Edge {
    pub fn new(limits: EdgeLimits) -> Arc<Edge> {
        Arc::new(Edge {
            limits,
            total: AtomicUsize::new(0),
            conns: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            forms: Mutex::new(HashMap::new()),
            flag_forms: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
        })
    }

    pub fn limits(&self) -> EdgeLimits {
        self.limits
    }

    /// A connection slot for `ip`, released when dropped; `None` when the
    /// address or the server is at its cap.
    pub fn try_connect(self: &Arc<Self>, ip: IpAddr) -> Option<ConnSlot> {
        let key = client_key(ip);
        let mut conns = lock(&self.conns);
        if self.total.load(Ordering::Relaxed) >= self.limits.max_connections {
            return None;
        }
        let n = conns.entry(key).or_insert(0);
        if *n >= self.limits.connections_per_address {
            return None;
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(ConnSlot {
            edge: self.clone(),
            key,
        })
    }

    /// Take one anonymous request from `ip`'s bucket; `Err(wait)` when it
    /// is empty, with the time until the next request is allowed.
    pub fn allow_anonymous(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.take(&self.buckets, ip, now, 1.0)
    }

    /// A request carrying only a web session cookie from `ip`: it spends a
    /// tenth of an anonymous request (people at one office share an
    /// address, and a page is one request), so a made-up cookie buys at
    /// most ten times the anonymous rate.
    pub fn allow_session(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.take(&self.buckets, ip, now, 0.1)
    }

    /// A request with a credential from `ip`: `Err(wait)` while the
    /// address's rejected credentials have emptied its bucket.
    pub fn allow_credentialed(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.take(&self.failures, ip, now, 0.0)
    }

    /// A credential from `ip` was rejected (401): it spends as an
    /// anonymous request would.
    pub fn note_rejected(&self, ip: IpAddr, now: Instant) {
        let _ = self.take(&self.failures, ip, now, 1.0);
    }

    /// A public form (an appeal) sent from `ip`: `Err(wait)` past
    /// [`FORMS_BURST`] and then [`FORMS_PER_HOUR`].
    pub fn allow_public_form(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let per_sec = f64::from(FORMS_PER_HOUR) / 3600.0;
        take_from(&self.forms, ip, now, 1.0, per_sec, f64::from(FORMS_BURST))
    }

    /// A public flag sent from `ip`: the same allowance as
    /// [`Edge::allow_public_form`], from a bucket of its own.
    pub fn allow_public_flag(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let per_sec = f64::from(FORMS_PER_HOUR) / 3600.0;
        take_from(
            &self.flag_forms,
            ip,
            now,
            1.0,
            per_sec,
            f64::from(FORMS_BURST),
        )
    }

    /// Refill `ip`'s bucket in `map` and take `cost` from it (0: only
    /// look); `Err(wait)` when less than one request is left.
    fn take(
        &self,
        map: &Mutex<HashMap<IpAddr, Bucket>>,
        ip: IpAddr,
        now: Instant,
        cost: f64,
    ) -> Result<(), Duration> {
        let per_sec = f64::from(self.limits.anonymous_per_minute) / 60.0;
        let burst = f64::from(self.limits.anonymous_burst.max(1));
        take_from(map, ip, now, cost, per_sec, burst)
    }
    /// A stream slot for a token, released when dropped; `None` at the cap.
    pub fn try_stream(self: &Arc<Self>, token_id: &str) -> Option<StreamSlot> {
        let mut streams = lock(&self.streams);
        let n = streams.entry(token_id.to_owned()).or_insert(0);
        if *n >= self.limits.streams_per_token {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            edge: self.clone(),
            token_id: token_id.to_owned(),
        })
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// A token bucket per address in `map`: refill at `per_sec` up to
/// `burst`, take `cost`; `Err(wait)` when less than one is left.
fn take_from(
    map: &Mutex<HashMap<IpAddr, Bucket>>,
    ip: IpAddr,
    now: Instant,
    cost: f64,
    per_sec: f64,
    burst: f64,
) -> Result<(), Duration> {
    let key = client_key(ip);

    let mut buckets = lock(map);
    if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&key) {
        buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec < burst
        });
        if buckets.len() >= MAX_TRACKED {
            // Every tracked address is busy: a flood from very many
            // addresses. Forget the oldest half rather than grow.
            let mut ats: Vec<Instant> = buckets.values().map(|b| b.at).collect();
            ats.sort_unstable();
            let cut = ats[ats.len() / 2];
            buckets.retain(|_, b| b.at > cut);
        }
    }
    let b = buckets.entry(key).or_insert(Bucket {
        tokens: burst,
        at: now,
    });
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    b.tokens = (b.tokens + elapsed * per_sec).min(burst);
    b.at = now;
    if b.tokens >= 1.0 {
        b.tokens -= cost;
        Ok(())
    } else if per_sec > 0.0 {
        Err(Duration::from_secs_f64((1.0 - b.tokens) / per_sec))
    } else {
        Err(Duration::from_secs(60))
    }
}

/// An open connection, counted until dropped.
pub struct ConnSlot {
    edge: Arc<Edge>,
    key: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut conns = lock(&self.edge.conns);
        if let Some(n) = conns.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                conns.remove(&self.key);
            }
        }
        self.edge.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A live stream, counted until dropped.
pub struct StreamSlot {
    edge: Arc<Edge>,
    token_id: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = lock(&self.edge.streams);
        if let Some(n) = streams.get_mut(&self.token_id) {
            *n -= 1;
            if *n == 0 {
                streams.remove(&self.token_id);
            }
        }
    }
}

/// Whether the request carries a web session cookie (`tapis_session`, or
/// `__Host-tapis_session` behind https).
fn has_session_cookie(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(name, value)| {
            matches!(name, "tapis_session" | "__Host-tapis_session") && !value.is_empty()
        })
}

/// Middleware: a request without credentials spends from its address's
/// bucket, and an empty bucket answers 429 with `Retry-After`. Requests
/// with a bearer token, or a web session cookie (people at one office
/// share an address) are limited by what their role may do instead (a
/// session cookie spends a tenth of an anonymous request); but every
/// rejected credential spends from the address's bucket of failures, so
/// made-up tokens and cookies are limited like anonymous requests.
pub(crate) async fn limit_anonymous(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let token = request.headers().contains_key(header::AUTHORIZATION);
    let session = !token && has_session_cookie(request.headers());
    let anonymous = !token && !session;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(ip) = peer else {
        return next.run(request).await;
    };
    let now = Instant::now();
    let allowed = if anonymous {
        state.edge.allow_anonymous(ip, now)
    } else if session {
        state
            .edge
            .allow_credentialed(ip, now)
            .and_then(|()| state.edge.allow_session(ip, now))
    } else {
        state.edge.allow_credentialed(ip, now)
    };
    if let Err(wait) = allowed {
        let secs = wait.as_secs().max(1);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests from this address; try again in {secs} s"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let response = next.run(request).await;
    // a rejected credential: a 401, or the web interface sending a cookie
    // that names no live session back to sign in (`expired=1`)
    let rejected = response.status() == StatusCode::UNAUTHORIZED
        || (session
            && response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .is_some_and(|l| l.contains("expired=1")));
    if !anonymous && rejected {
        state.edge.note_rejected(ip, Instant::now());
    }
    response
}

#[cfg(test)]
mod tests {

    #[test]
    fn public_flags_and_appeals_have_buckets_of_their_own() {
        let edge = Edge::new(limits());
        let a: IpAddr = "198.51.100.8".parse().expect("ip");
        let t0 = Instant::now();
        let appeals = (0..50)
            .take_while(|_| edge.allow_public_form(a, t0).is_ok())
            .count();
        assert_eq!(appeals, FORMS_BURST as usize);
        // the address's appeals are spent; its flags are not
        let flags = (0..50)
            .take_while(|_| edge.allow_public_flag(a, t0).is_ok())
            .count();
        assert_eq!(flags, FORMS_BURST as usize);
        assert!(edge.allow_public_form(a, t0).is_err());
        // ten minutes later one more of each
        let later = t0 + Duration::from_secs(600);
        assert!(edge.allow_public_flag(a, later).is_ok());
        assert!(edge.allow_public_flag(a, later).is_err());
        assert!(edge.allow_public_form(a, later).is_ok());
    }

    #[test]
    fn rejected_credentials_spend_like_anonymous_requests() {
        let edge = Edge::new(limits()); // burst 3, 60 a minute
        let a: IpAddr = "198.51.100.7".parse().expect("ip");
        let b: IpAddr = "203.0.113.9".parse().expect("ip");
        let t0 = Instant::now();
        // a credentialed request is let through until its address has had
        // a burst of rejected credentials
        for _ in 0..3 {
            assert!(edge.allow_credentialed(a, t0).is_ok());
            edge.note_rejected(a, t0);
        }
        assert!(
            edge.allow_credentialed(a, t0).is_err(),
            "made-up tokens are limited"
        );
        assert!(edge.allow_credentialed(b, t0).is_ok(), "per address");
        assert!(edge.allow_anonymous(a, t0).is_ok(), "its own bucket");
        // a second later one more is allowed (1/s refill)
        assert!(
            edge.allow_credentialed(a, t0 + Duration::from_secs(1))
                .is_ok()
        );
        // a session cookie costs a tenth of an anonymous request (a burst
        // of 3 lets about 20 pages through at once), bounded all the same
        let c: IpAddr = "192.0.2.44".parse().expect("ip");
        let pages = (0..100)
            .take_while(|_| edge.allow_session(c, t0).is_ok())
            .count();
        assert!((20..=21).contains(&pages), "{pages} pages");
        assert!(edge.allow_anonymous(c, t0).is_err(), "one bucket");
    }

    #[test]
    fn a_session_cookie_is_a_credential_at_the_edge() {
        let h = |v: &str| {
            let mut m = axum::http::HeaderMap::new();
            m.insert(header::COOKIE, v.parse().expect("cookie"));
            m
        };
        assert!(has_session_cookie(&h("lang=id; tapis_session=abc")));
        assert!(has_session_cookie(&h("__Host-tapis_session=abc")));
        assert!(!has_session_cookie(&h("tapis_session=")));
        assert!(!has_session_cookie(&h("lang=id; not_tapis_session=abc")));
        assert!(!has_session_cookie(&axum::http::HeaderMap::new()));
    }

    use super::*;

    fn limits() -> EdgeLimits {
        EdgeLimits {
            max_connections: 5,
            connections_per_address: 2,
            anonymous_per_minute: 60,
            anonymous_burst: 3,
            streams_per_token: 1,
            ..EdgeLimits::default()
        }
    }

    #[test]
    fn connections_are_capped_per_address_and_in_all() {
        let edge = Edge::new(limits());
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let s1 = edge.try_connect(a).expect("first");
        let _s2 = edge.try_connect(a).expect("second");
        assert!(edge.try_connect(a).is_none(), "third from one address");
        drop(s1);
        let _s3 = edge.try_connect(a).expect("a slot came back");
        // An IPv6 client is counted by its /64.
        let v6a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let _t1 = edge.try_connect(v6a).expect("v6");
        let _t2 = edge.try_connect(v6b).expect("v6 same /64");
        assert!(edge.try_connect(v6a).is_none());
        let _u = edge
            .try_connect("192.0.2.7".parse().expect("ip"))
            .expect("fifth");
        assert!(
            edge.try_connect("192.0.2.8".parse().expect("ip")).is_none(),
            "the server is full"
        );
        assert_eq!(edge.open_connections(), 5);
    }

    #[test]
    fn anonymous_requests_spend_a_bucket_that_refills() {
        let edge = Edge::new(limits());
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(edge.allow_anonymous(a, t0).is_ok());
        }
        let wait = edge.allow_anonymous(a, t0).expect_err("empty");
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(
            edge.allow_anonymous(b, t0).is_ok(),
            "another address has its own"
        );
        assert!(edge.allow_anonymous(a, t0 + Duration::from_secs(1)).is_ok());
        assert!(
            edge.allow_anonymous(a, t0 + Duration::from_secs(1))
                .is_err()
        );
    }

    #[test]
    fn streams_are_capped_per_token() {
        let edge = Edge::new(limits());
        let s = edge.try_stream("tok-1").expect("first");
        assert!(edge.try_stream("tok-1").is_none());
        assert!(edge.try_stream("tok-2").is_some());
        drop(s);
        assert!(edge.try_stream("tok-1").is_some());
    }
}
