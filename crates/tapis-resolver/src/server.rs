//! Sockets and wiring. UDP is served by plain threads, each blocking on the
//! same socket: a policy or cache answer is made and sent on that thread
//! without touching the async runtime or allocating. Only a cache miss (or
//! a walled-garden CNAME to chase) becomes an async task that asks an
//! upstream. TCP, the zone followers, upstream health checks and metrics
//! run on the tokio runtime.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tapis_dns::wire::{HEADER_LEN, Message, Rcode, read_name, rtype};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::Error;
use crate::access::{self, Cidr};
use crate::cache::{Cache, CacheLimits, answer_prepared};
use crate::config::Config;
use crate::flight::{Flights, Outcome, Ticket};
use crate::metrics::Metrics;
use crate::packet::{Answer, Ede, Query, Reject, badvers, error_answer};
use crate::policy::{Action, Policies, Verdict};
use crate::rrl::{Rate, RateLimiter, RateLimits};
use crate::upstream::Upstreams;
use crate::xfr::{Followed, Zones};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to do with a message after the fast path.
#[derive(Debug)]
pub enum Step {
    /// `out` holds the answer.
    Reply,
    /// Say nothing.
    Drop,
    /// Ask an upstream ([`Handler::resolve`]), or wait for the query
    /// already asking this question: a place in its flight.
    Forward(Ticket),
    /// Local data CNAME (a walled garden): answer with it and the target's
    /// resolution.
    Chase(Box<Chase>),
}

#[derive(Debug)]
pub struct Chase {
    pub target: Vec<u8>,
    pub ttl: u32,
    pub ede_code: u16,
    pub reference: Option<String>,
}

enum PolicyStep {
    Done(Step),
    Continue,
}

/// Query handling shared by every socket.
pub struct Handler {
    pub policies: Arc<Policies>,
    pub cache: Cache,
    pub upstreams: Upstreams,
    pub metrics: Arc<Metrics>,
    pub zones: Arc<Zones>,
    /// Upstream queries in flight (capped, coalesced).
    pub flights: Flights,
    /// Client networks that may query (`allow_query`).
    allow_query: Box<[Cidr]>,
    /// Answers per client prefix over UDP.
    pub rate: RateLimiter,
    our_udp: u16,
    ede: bool,
    lookup_url: Option<String>,
    query_log: bool,
    log_ip: bool,
}

impl Handler {
    fn limit(&self, q: &Query<'_>, t: Transport) -> usize {
        match t {
            Transport::Udp => q.udp_limit(self.our_udp),
            Transport::Tcp => 65535,
        }
    }

    fn log(&self, q: &Query<'_>, src: SocketAddr, outcome: &str) {
        if !self.query_log {
            return;
        }
        let name = tapis_dns::name::to_text(q.qname_lower());
        if self.log_ip {
            tracing::info!(target: "tapis_resolver::querylog", qname = %name, qtype = q.qtype, outcome, client = %src.ip());
        } else {
            tracing::info!(target: "tapis_resolver::querylog", qname = %name, qtype = q.qtype, outcome);
        }
    }

    /// The fast path: policy, then cache. Never panics on any input.
    pub fn handle(&self, bytes: &[u8], src: SocketAddr, t: Transport, out: &mut Vec<u8>) -> Step {
        let parsed = Query::parse(bytes);
        // A client outside allow_query is refused, on UDP as on TCP: a
        // REFUSED is no larger than the query (no amplification) and tells
        // a misconfigured client at once, where silence would make it
        // retry; over UDP the rate limiter bounds how many are sent. A
        // NOTIFY is judged by its zone (it must come from the primary).
        if !matches!(parsed, Err(Reject::Notify | Reject::Drop))
            && !access::any_contains(&self.allow_query, src.ip())
        {
            self.metrics.refused_clients.fetch_add(1, Relaxed);
            return match error_answer(bytes, Rcode::REFUSED, out) {
                Some(()) => Step::Reply,
                None => Step::Drop,
            };
        }
        let q = match parsed {
            Ok(q) => q,
            Err(Reject::Drop) => {
                self.metrics.dropped.fetch_add(1, Relaxed);
                return Step::Drop;
            }
            Err(Reject::Error(rcode)) => {
                self.metrics.formerr.fetch_add(1, Relaxed);
                return match error_answer(bytes, rcode, out) {
                    Some(()) => Step::Reply,
                    None => Step::Drop,
                };
            }
            Err(Reject::Notify) => {
                return match self.zones.notify(bytes, src) {
                    Some(a) => {
                        *out = a;
                        Step::Reply
                    }
                    None => {
                        self.metrics.formerr.fetch_add(1, Relaxed);
                        match error_answer(bytes, Rcode::FORMERR, out) {
                            Some(()) => Step::Reply,
                            None => Step::Drop,
                        }
                    }
                };
            }
        };
        if q.edns.is_some_and(|e| e.version != 0) {
            badvers(out, &q, self.our_udp);
            return Step::Reply;
        }
        if q.qclass != 1
            || matches!(
                q.qtype,
                rtype::AXFR | rtype::IXFR | rtype::MAILA | rtype::MAILB
            )
            || q.qtype == rtype::TSIG
            || q.qtype == rtype::OPT
        {
            let limit = self.limit(&q, t);
            Answer::start(out, &q, Rcode::REFUSED).finish(&q, self.our_udp, None, limit);
            self.log(&q, src, "refused");
            return Step::Reply;
        }
        let step = self.policies.check(q.qname_lower(), |v| match v {
            None => PolicyStep::Continue,
            Some(v) => self.policy_answer(&q, v, t, out),
        });
        if let PolicyStep::Done(step) = step {
            return step;
        }
        let limit = self.limit(&q, t);
        if self.cache.answer(&q, self.our_udp, limit, out) {
            self.metrics.cache_hits.fetch_add(1, Relaxed);
            self.log(&q, src, "cache");
            return Step::Reply;
        }
        self.metrics.cache_misses.fetch_add(1, Relaxed);
        let mut kb = [0u8; 259];
        match self.flights.join(crate::cache::key(&q, &mut kb)) {
            Some(ticket) => Step::Forward(ticket),
            None => {
                // over the cap: fail this one now rather than queue it
                self.servfail(&q, limit, out);
                self.log(&q, src, "over-cap");
                Step::Reply
            }
        }
    }

    fn policy_answer(
        &self,
        q: &Query<'_>,
        v: Verdict<'_>,
        t: Transport,
        out: &mut Vec<u8>,
    ) -> PolicyStep {
        let Verdict {
            zone_index,
            zone,
            hit,
        } = v;
        self.metrics.policy_hit(zone_index, hit.action);
        let reference = zone.reference(hit.reference);
        let ede = (self.ede && q.edns.is_some()).then(|| Ede {
            code: reference.map_or(15, |r| r.category.ede_code()),
            reference: reference.map(|r| &*r.reference),
            lookup_url: self.lookup_url.as_deref(),
            qname: q.qname_lower(),
        });
        let limit = self.limit(q, t);
        let negative = |out: &mut Vec<u8>, rcode: Rcode, ede: Option<Ede<'_>>| {
            let mut a = Answer::start(out, q, rcode);
            if let Some(soa) = zone.soa() {
                a.at(
                    1,
                    zone.origin().wire(),
                    rtype::SOA,
                    soa.ttl.min(soa.minimum),
                    &soa.rdata,
                );
            }
            a.finish(q, self.our_udp, ede, limit);
        };
        let src = SocketAddr::from(([0, 0, 0, 0], 0));
        match hit.action {
            Action::Passthru => {
                self.log(q, src, "passthru");
                PolicyStep::Continue
            }
            Action::Drop => {
                self.log(q, src, "drop");
                PolicyStep::Done(Step::Drop)
            }
            Action::TcpOnly if t == Transport::Tcp => PolicyStep::Continue,
            Action::TcpOnly => {
                let a = Answer::start(out, q, Rcode::NOERROR);
                a.finish(q, self.our_udp, None, limit);
                crate::packet::truncate(out, q, self.our_udp);
                self.log(q, src, "tcp-only");
                PolicyStep::Done(Step::Reply)
            }
            Action::Nxdomain => {
                negative(out, Rcode::NXDOMAIN, ede);
                self.log(q, src, "policy-nxdomain");
                PolicyStep::Done(Step::Reply)
            }
            Action::Nodata => {
                negative(out, Rcode::NOERROR, ede);
                self.log(q, src, "policy-nodata");
                PolicyStep::Done(Step::Reply)
            }
            Action::Local => {
                let Some(data) = zone.local_data(&hit) else {
                    negative(out, Rcode::NOERROR, ede);
                    return PolicyStep::Done(Step::Reply);
                };
                let matching = data.records.iter().filter(|(rt, _, _)| {
                    *rt == q.qtype
                        || (q.qtype == rtype::ANY && *rt != rtype::CNAME)
                        || (q.qtype == rtype::CNAME && *rt == rtype::CNAME)
                });
                let mut a = Answer::start(out, q, Rcode::NOERROR);
                let mut any = false;
                for (rt, ttl, rd) in matching {
                    a.at_qname(0, *rt, *ttl, rd);
                    any = true;
                }
                if any {
                    a.finish(q, self.our_udp, ede, limit);
                    self.log(q, src, "policy-local");
                    return PolicyStep::Done(Step::Reply);
                }
                if let Some((_, ttl, target)) =
                    data.records.iter().find(|(rt, _, _)| *rt == rtype::CNAME)
                {
                    let target = expand_wildcard_target(target, q.qname_lower());
                    self.log(q, src, "policy-cname");
                    return PolicyStep::Done(Step::Chase(Box::new(Chase {
                        target,
                        ttl: *ttl,
                        ede_code: reference.map_or(15, |r| r.category.ede_code()),
                        reference: reference.map(|r| r.reference.to_string()),
                    })));
                }
                negative(out, Rcode::NOERROR, ede);
                self.log(q, src, "policy-local-nodata");
                PolicyStep::Done(Step::Reply)
            }
        }
    }

    /// The slow path: forward (or chase a policy CNAME) and answer.
    pub async fn resolve(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        t: Transport,
        step: Step,
    ) -> Option<Vec<u8>> {
        let q = Query::parse(bytes).ok()?;
        let limit = self.limit(&q, t);
        let mut out = Vec::with_capacity(512);
        let ticket = match step {
            Step::Chase(c) => {
                self.chase(&q, &c, limit, &mut out).await;
                return Some(out);
            }
            Step::Forward(ticket) => ticket,
            Step::Reply | Step::Drop => return None,
        };
        match self.fly(&q, ticket).await {
            // Every upstream refused: to our client that is a failure to
            // resolve, not a refusal by us.
            Outcome::Answer(answer) if answer[3] & 0xF == Rcode::REFUSED.0 as u8 => {
                self.servfail(&q, limit, &mut out);
                self.log(&q, src, "servfail");
            }
            Outcome::Answer(answer) => {
                if self.answer_from(&q, &answer, self.our_udp, limit, &mut out) {
                    self.log(&q, src, "forwarded");
                } else {
                    self.servfail(&q, limit, &mut out);
                }
            }
            Outcome::Failed | Outcome::Pending => {
                self.servfail(&q, limit, &mut out);
                self.log(&q, src, "servfail");
            }
        }
        Some(out)
    }

    /// The upstream's answer to `q`'s question: asked by this task when it
    /// leads the flight (and stored in the cache before the others wake),
    /// or awaited from the task that does.
    async fn fly(&self, q: &Query<'_>, ticket: Ticket) -> Outcome {
        let lead = match ticket {
            Ticket::Wait(w) => return w.outcome().await,
            Ticket::Lead(lead) => lead,
        };
        let outcome = match self
            .upstreams
            .query(q.qname_wire(), q.qtype, q.qclass)
            .await
        {
            Ok(answer) => {
                if answer[3] & 0xF != Rcode::REFUSED.0 as u8 {
                    let _ = self.cache.store(q, &answer);
                }
                Outcome::Answer(answer.into())
            }
            Err(e) => {
                tracing::debug!(error = %e, "no upstream answer");
                Outcome::Failed
            }
        };
        lead.finish(outcome.clone());
        outcome
    }

    /// Writes the answer to `q` from an upstream answer to its question:
    /// from the cache where the flight's leader stored it (with `q`'s id
    /// and question), or prepared afresh when it was not cacheable. False
    /// when the upstream answer is unusable.
    fn answer_from(
        &self,
        q: &Query<'_>,
        answer: &[u8],
        udp: u16,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        if self.cache.answer(q, udp, limit, out) {
            return true;
        }
        match self.cache.store(q, answer) {
            Some(p) => {
                answer_prepared(&p, q, udp, limit, out);
                true
            }
            None => false,
        }
    }

    /// The answer to a query over the rate limit that slips: no records,
    /// TC set, so a real client asks again over TCP. False: say nothing.
    pub fn slip(&self, bytes: &[u8], out: &mut Vec<u8>) -> bool {
        let Ok(q) = Query::parse(bytes) else {
            return false;
        };
        Answer::start(out, &q, Rcode::NOERROR).finish(&q, self.our_udp, None, usize::MAX);
        crate::packet::truncate(out, &q, self.our_udp);
        true
    }

    fn servfail(&self, q: &Query<'_>, limit: usize, out: &mut Vec<u8>) {
        self.metrics.servfail.fetch_add(1, Relaxed);
        Answer::start(out, q, Rcode::SERVFAIL).finish(q, self.our_udp, None, limit);
    }

    async fn chase(&self, q: &Query<'_>, c: &Chase, limit: usize, out: &mut Vec<u8>) {
        // Resolve the target like any query (cache, then upstream).
        let mut tq = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        tq.extend_from_slice(&c.target);
        tq.extend_from_slice(&q.qtype.to_be_bytes());
        tq.extend_from_slice(&q.qclass.to_be_bytes());
        let mut target_answer = Vec::new();
        let mut ok = false;
        if let Ok(tquery) = Query::parse(&tq) {
            if self.cache.answer(&tquery, 65535, 65535, &mut target_answer) {
                ok = true;
            } else {
                // the target's upstream query counts against the cap and
                // joins any flight for the same question
                let mut kb = [0u8; 259];
                let ticket = self.flights.join(crate::cache::key(&tquery, &mut kb));
                if let Some(ticket) = ticket
                    && let Outcome::Answer(a) = self.fly(&tquery, ticket).await
                {
                    ok = self.answer_from(&tquery, &a, 65535, 65535, &mut target_answer);
                }
            }
        }
        let parsed = if ok {
            Message::parse(&target_answer).ok()
        } else {
            None
        };
        let rcode = parsed.as_ref().map_or(Rcode::NOERROR, |m| m.header.rcode());
        let mut a = Answer::start(
            out,
            q,
            if rcode == Rcode::NXDOMAIN {
                rcode
            } else {
                Rcode::NOERROR
            },
        );
        a.at_qname(0, rtype::CNAME, c.ttl, &c.target);
        if let Some(m) = &parsed {
            for r in &m.answers {
                if let Some(rd) = expand_rdata(m, r) {
                    a.at(0, r.name.wire(), r.rtype, r.ttl, &rd);
                }
            }
        }
        let ede = (self.ede && q.edns.is_some()).then(|| Ede {
            code: c.ede_code,
            reference: c.reference.as_deref(),
            lookup_url: self.lookup_url.as_deref(),
            qname: q.qname_lower(),
        });
        a.finish(q, self.our_udp, ede, limit);
    }
}

/// `*.garden.` as a CNAME target: the query name goes in place of `*`.
fn expand_wildcard_target(target: &[u8], qname: &[u8]) -> Vec<u8> {
    if target.len() > 3 && target.starts_with(b"\x01*") {
        let rest = &target[2..];
        if qname.len() - 1 + rest.len() <= 255 {
            let mut t = qname[..qname.len() - 1].to_vec();
            t.extend_from_slice(rest);
            return t;
        }
    }
    target.to_vec()
}

/// Record data with compressed names written out (for records copied from
/// one message into another).
fn expand_rdata(m: &Message<'_>, r: &tapis_dns::wire::Record) -> Option<Vec<u8>> {
    match r.rtype {
        rtype::CNAME | rtype::NS | 12 | 39 => read_name(m.bytes, r.rdata.start)
            .ok()
            .map(|(n, _)| n.wire().to_vec()),
        15 => {
            let (n, _) = read_name(m.bytes, r.rdata.start + 2).ok()?;
            let mut d = m.bytes.get(r.rdata.start..r.rdata.start + 2)?.to_vec();
            d.extend_from_slice(n.wire());
            Some(d)
        }
        rtype::OPT | rtype::SOA => None,
        _ => Some(m.rdata(r).to_vec()),
    }
}

/// A running resolver.
pub struct Running {
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub handler: Arc<Handler>,
    stop: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the resolver on the current tokio runtime.
pub async fn start(cfg: Config) -> Result<Running, Error> {
    cfg.check()?;
    let mut zone_names = Vec::new();
    let mut followed = Vec::new();
    for (i, z) in cfg.zones.iter().enumerate() {
        let origin = z.origin()?;
        zone_names.push(tapis_dns::name::to_text(origin.wire()));
        followed.push(Arc::new(Followed {
            index: i,
            origin,
            source: z.source()?,
            min_refresh: z.min_refresh_secs.max(1),
            max_refresh: z.max_refresh_secs.max(z.min_refresh_secs.max(1)),
            file_poll: Duration::from_secs(z.file_poll_secs.max(1)),
            wake: Notify::new(),
        }));
    }
    let metrics = Arc::new(Metrics::new(
        zone_names.clone(),
        cfg.upstreams.iter().map(|u| u.to_string()).collect(),
    ));
    let policies = Arc::new(Policies::new(
        followed
            .iter()
            .zip(&zone_names)
            .map(|(f, n)| (n.clone(), f.origin.clone())),
    ));
    let zones = Arc::new(Zones {
        zones: followed,
        policies: policies.clone(),
        metrics: metrics.clone(),
        data_dir: cfg.data_dir.clone(),
    });
    let handler = Arc::new(Handler {
        policies,
        cache: Cache::new(CacheLimits {
            max_bytes: cfg.cache_bytes,
            max_ttl: cfg.max_ttl,
            max_negative_ttl: cfg.max_negative_ttl,
        }),
        upstreams: Upstreams::new(
            &cfg.upstreams,
            Duration::from_millis(cfg.upstream_timeout_ms),
            metrics.clone(),
        ),
        metrics: metrics.clone(),
        zones: zones.clone(),
        flights: Flights::new(cfg.max_upstream_queries, metrics.clone()),
        allow_query: cfg.allow_query.clone().into_boxed_slice(),
        rate: RateLimiter::new(RateLimits {
            rate: cfg.rate_limit,
            slip: cfg.rate_limit_slip,
            ipv4_prefix: cfg.rate_limit_ipv4_prefix,
            ipv6_prefix: cfg.rate_limit_ipv6_prefix,
            exempt: cfg.rate_limit_exempt.clone(),
        }),
        our_udp: cfg.max_udp_size,
        ede: cfg.ede,
        lookup_url: cfg.lookup_url.clone(),
        query_log: cfg.query_log,
        log_ip: cfg.query_log_client_ip,
    });

    let (udp, tcp) = bind_both(cfg.listen).await?;
    let udp_addr = udp.local_addr().map_err(|e| Error::io("udp socket", e))?;
    let tcp_addr = tcp.local_addr().map_err(|e| Error::io("tcp socket", e))?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Handle::current();
    let udp = Arc::new(udp);
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| Error::io("udp socket", e))?;
    let mut threads = Vec::new();
    for n in 0..cfg.threads {
        let (udp, handler, rt, stop) = (udp.clone(), handler.clone(), rt.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("dns-udp-{n}"))
                .spawn(move || udp_loop(&udp, &handler, &rt, &stop))
                .map_err(|e| Error::io("cannot start a UDP thread", e))?,
        );
    }
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(tcp_loop(
        tcp,
        handler.clone(),
        cfg.max_tcp_clients,
        shutdown_rx.clone(),
    )));
    tasks.extend(zones.spawn(shutdown_rx.clone()));
    {
        let h = handler.clone();
        let mut sd = shutdown_rx.clone();
        let every = Duration::from_secs(cfg.health_interval_secs.max(1));
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => h.upstreams.check_down().await,
                    _ = sd.changed() => return,
                }
            }
        }));
    }
    let mut metrics_addr = None;
    if let Some(addr) = cfg.metrics_listen {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format!("cannot listen for metrics on {addr}"), e))?;
        metrics_addr = l.local_addr().ok();
        tasks.push(tokio::spawn(metrics_loop(
            l,
            handler.clone(),
            shutdown_rx.clone(),
        )));
    }
    warn_if_files_run_short(cfg.max_upstream_queries + cfg.max_tcp_clients + 64);
    tracing::info!(%udp_addr, %tcp_addr, metrics = ?metrics_addr, zones = zone_names.len(), upstreams = cfg.upstreams.len(), "resolver listening");
    Ok(Running {
        udp_addr,
        tcp_addr,
        metrics_addr,
        handler,
        stop,
        shutdown,
        threads,
        tasks,
    })
}

impl Running {
    pub fn policies(&self) -> &Arc<Policies> {
        &self.handler.policies
    }

    /// Stops answering, lets followers write their snapshots, and waits.
    pub async fn shutdown(self) {
        self.stop.store(true, Relaxed);
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Warns when the open-file limit (soft, from `/proc/self/limits`) is
/// below what the caps allow: the caps would then not be what stops a
/// flood, EMFILE would.
fn warn_if_files_run_short(needed: usize) {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        });
    if let Some(limit) = limit
        && limit < needed
    {
        tracing::warn!(
            limit,
            needed,
            "the open-file limit is below max_upstream_queries + max_tcp_clients + 64: raise it (ulimit -n, LimitNOFILE=) or lower the caps"
        );
    }
}

async fn bind_both(addr: SocketAddr) -> Result<(StdUdpSocket, TcpListener), Error> {
    for _ in 0..20 {
        let udp = StdUdpSocket::bind(addr)
            .map_err(|e| Error::io(format!("cannot listen on {addr} (UDP)"), e))?;
        let port = udp
            .local_addr()
            .map_err(|e| Error::io("udp socket", e))?
            .port();
        let mut t = addr;
        t.set_port(port);
        match TcpListener::bind(t).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() != 0 => {
                return Err(Error::io(format!("cannot listen on {t} (TCP)"), e));
            }
            Err(_) => continue,
        }
    }
    Err(Error::Config(format!(
        "no port free for both UDP and TCP on {}",
        addr.ip()
    )))
}

fn udp_loop(
    sock: &Arc<StdUdpSocket>,
    handler: &Arc<Handler>,
    rt: &tokio::runtime::Handle,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    while !stop.load(Relaxed) {
        let (n, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "udp receive");
                continue;
            }
        };
        handler.metrics.queries_udp.fetch_add(1, Relaxed);
        // counted on arrival: a query over the limit costs no lookup
        match handler.rate.check(src.ip()) {
            Rate::Send => {}
            Rate::Drop => {
                handler.metrics.rrl_dropped.fetch_add(1, Relaxed);
                continue;
            }
            Rate::Slip => {
                handler.metrics.rrl_slipped.fetch_add(1, Relaxed);
                if handler.slip(&buf[..n], &mut out) {
                    let _ = sock.send_to(&out, src);
                }
                continue;
            }
        }
        match handler.handle(&buf[..n], src, Transport::Udp, &mut out) {
            Step::Reply => {
                let _ = sock.send_to(&out, src);
            }
            Step::Drop => {}
            step => {
                let bytes = buf[..n].to_vec();
                let (h, s) = (handler.clone(), sock.clone());
                rt.spawn(async move {
                    if let Some(a) = h.resolve(&bytes, src, Transport::Udp, step).await {
                        let _ = s.send_to(&a, src);
                    }
                });
            }
        }
    }
}

async fn tcp_loop(
    l: TcpListener,
    handler: Arc<Handler>,
    max_clients: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    // each connection holds a file descriptor: a fixed number of them, so
    // TCP clients cannot run the process out of files either
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        tokio::select! {
            r = l.accept() => match r {
                Ok((s, src)) => {
                    if open.load(Relaxed) >= max_clients {
                        handler.metrics.tcp_refused.fetch_add(1, Relaxed);
                        drop(s);
                        continue;
                    }
                    open.fetch_add(1, Relaxed);
                    let h = handler.clone();
                    let sd = shutdown.clone();
                    let open = open.clone();
                    tokio::spawn(async move {
                        tcp_conn(s, src, h, sd).await;
                        open.fetch_sub(1, Relaxed);
                    });
                }
                Err(e) => {
                    tracing::debug!(error = %e, "tcp accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn tcp_conn(
    mut s: TcpStream,
    src: SocketAddr,
    h: Arc<Handler>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut out = Vec::with_capacity(4096);
    loop {
        let mut len = [0u8; 2];
        let read = tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut len)) => r,
            _ = shutdown.changed() => return,
        };
        if !matches!(read, Ok(Ok(_))) {
            return;
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if !matches!(
            tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut msg)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        h.metrics.queries_tcp.fetch_add(1, Relaxed);
        let answer: Option<&[u8]>;
        let resolved;
        match h.handle(&msg, src, Transport::Tcp, &mut out) {
            Step::Reply => answer = Some(&out),
            Step::Drop => answer = None,
            step => {
                resolved = h.resolve(&msg, src, Transport::Tcp, step).await;
                answer = resolved.as_deref();
            }
        }
        if let Some(a) = answer
            && a.len() >= HEADER_LEN
        {
            let mut framed = Vec::with_capacity(a.len() + 2);
            framed.extend_from_slice(&(a.len().min(65535) as u16).to_be_bytes());
            framed.extend_from_slice(a);
            if s.write_all(&framed).await.is_err() {
                return;
            }
        }
    }
}

async fn metrics_loop(l: TcpListener, h: Arc<Handler>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let (mut s, _) = tokio::select! {
            r = l.accept() => match r { Ok(x) => x, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        let h = h.clone();
        tokio::spawn(async move {
            let mut req = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => req.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let ok = req.starts_with(b"GET /metrics ") || req.starts_with(b"GET / ");
            let (status, body) = if ok {
                let up: Vec<bool> = (0..h.upstreams.list().len())
                    .map(|i| h.upstreams.is_healthy(i))
                    .collect();
                (
                    "200 OK",
                    h.metrics
                        .render(tapis_dns::tsig::unix_now(), h.cache.len(), &up),
                )
            } else {
                ("404 Not Found", "not found: try GET /metrics\n".to_string())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(body.as_bytes()).await;
        });
    }
}
