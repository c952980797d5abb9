//! The replay's own stand-ins for the other side of each channel: a
//! platform's webhook receiver (verifies Standard Webhooks signatures,
//! answers 2xx, or 503 while "down"), an SMTP sink for the email fallback,
//! and an ISP secondary (answers NOTIFY, transfers the zone with the ISP's
//! TSIG key). They record what arrived so expectations can check it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tapis_dns::tsig::TsigKey;
use tapis_dns::wire::{Message, MessageBuilder, Name, Soa, flags, opcode, rtype};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// One event as a platform received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `webhook-id` header: tapis's event id.
    pub id: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---- webhook -------------------------------------------------------------

/// A platform's webhook endpoint.
pub struct Webhook {
    pub addr: SocketAddr,
    up: AtomicBool,
    secret: Mutex<Option<String>>,
    received: Mutex<Vec<Received>>,
    refused: Mutex<u64>,
    bad_signatures: Mutex<u64>,
}

impl Webhook {
    pub async fn start(
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<Arc<Webhook>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let hook = Arc::new(Webhook {
            addr: listener.local_addr()?,
            up: AtomicBool::new(true),
            secret: Mutex::new(None),
            received: Mutex::new(Vec::new()),
            refused: Mutex::new(0),
            bad_signatures: Mutex::new(0),
        });
        let h = hook.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let h = h.clone();
                    async move { h.receive(&headers, &body) }
                },
            ),
        );
        let mut stop = shutdown;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(hook)
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn set_secret(&self, secret: String) {
        *lock(&self.secret) = Some(secret);
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.received).clone()
    }

    /// Deliveries refused while down, and deliveries whose signature did
    /// not verify.
    pub fn counters(&self) -> (u64, u64) {
        (*lock(&self.refused), *lock(&self.bad_signatures))
    }

    fn receive(&self, headers: &axum::http::HeaderMap, body: &[u8]) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        if !self.up.load(Ordering::SeqCst) {
            *lock(&self.refused) += 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        let (id, ts, sigs) = (
            h("webhook-id"),
            h("webhook-timestamp"),
            h("webhook-signature"),
        );
        let verified = match (lock(&self.secret).as_deref(), ts.parse::<i64>()) {
            (Some(secret), Ok(ts)) => tapis_channel::webhook::sign(secret, id, ts, body)
                .map(|expected| sigs.split(' ').any(|s| s == expected))
                .unwrap_or(false),
            _ => false,
        };
        if !verified {
            *lock(&self.bad_signatures) += 1;
            return StatusCode::UNAUTHORIZED;
        }
        lock(&self.received).push(Received { id: id.to_owned() });
        StatusCode::NO_CONTENT
    }
}

// ---- SMTP ----------------------------------------------------------------

/// One email as the sink received it.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: Vec<String>,
    pub data: String,
}

impl Email {
    /// The Message-ID without its brackets (tapis uses `<event id@tapis>`).
    pub fn message_id(&self) -> Option<&str> {
        self.data
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("message-id")
                    .then(|| v.trim().trim_matches(['<', '>']))
            })
    }
}

/// A minimal SMTP server (RFC 5321 subset: HELO/EHLO, MAIL, RCPT, DATA,
/// RSET, NOOP, QUIT) that keeps every message.
pub struct SmtpSink {
    pub addr: SocketAddr,
    mail: Mutex<Vec<Email>>,
}

impl SmtpSink {
    pub async fn start(
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<Arc<SmtpSink>> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), shutdown).await
    }

    pub async fn start_on(
        addr: SocketAddr,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<Arc<SmtpSink>> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for SMTP on {addr}: {e}"))?;
        let sink = Arc::new(SmtpSink {
            addr: listener.local_addr()?,
            mail: Mutex::new(Vec::new()),
        });
        let s = sink.clone();
        let mut stop = shutdown;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((conn, _)) = accepted {
                            let s = s.clone();
                            tokio::spawn(async move {
                                if let Err(e) = s.session(conn).await {
                                    tracing::debug!(error = %e, "smtp sink session ended");
                                }
                            });
                        }
                    }
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
                }
            }
        });
        Ok(sink)
    }

    pub fn mail(&self) -> Vec<Email> {
        lock(&self.mail).clone()
    }

    async fn session(&self, conn: TcpStream) -> std::io::Result<()> {
        let (r, mut w) = conn.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"220 tapis-replay ESMTP sink\r\n").await?;
        let mut to = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => w.write_all(b"250-tapis-replay\r\n250 8BITMIME\r\n").await?,
                "HELO" | "MAIL" | "NOOP" => w.write_all(b"250 OK\r\n").await?,
                "RSET" => {
                    to.clear();
                    w.write_all(b"250 OK\r\n").await?
                }
                "RCPT" => {
                    let addr = line
                        .split_once(':')
                        .map(|(_, a)| a.trim().trim_matches(['<', '>']).to_owned())
                        .unwrap_or_default();
                    to.push(addr);
                    w.write_all(b"250 OK\r\n").await?
                }
                "DATA" => {
                    w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                    let mut data = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" || line == ".\n" {
                            break;
                        }
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    }
                    lock(&self.mail).push(Email {
                        to: std::mem::take(&mut to),
                        data,
                    });
                    w.write_all(b"250 OK queued\r\n").await?
                }
                "QUIT" => {
                    w.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => w.write_all(b"502 not implemented\r\n").await?,
            }
        }
    }
}

// ---- ISP secondary ---------------------------------------------------------

/// An ISP's secondary: answers NOTIFY (recording the serial and when it
/// came) and transfers the zone with the ISP's TSIG key.
pub struct Secondary {
    pub addr: SocketAddr,
    notifies: Mutex<Vec<(u32, Instant)>>,
}

impl Secondary {
    pub async fn start(
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<Arc<Secondary>> {
        let sock = UdpSocket::bind("127.0.0.1:0").await?;
        let sec = Arc::new(Secondary {
            addr: sock.local_addr()?,
            notifies: Mutex::new(Vec::new()),
        });
        let s = sec.clone();
        let mut stop = shutdown;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                tokio::select! {
                    got = sock.recv_from(&mut buf) => {
                        let Ok((n, from)) = got else { continue };
                        if let Some(answer) = s.on_notify(&buf[..n]) {
                            let _ = sock.send_to(&answer, from).await;
                        }
                    }
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
                }
            }
        });
        Ok(sec)
    }

    /// NOTIFYs received: (serial, when).
    pub fn notifies(&self) -> Vec<(u32, Instant)> {
        lock(&self.notifies).clone()
    }

    fn on_notify(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let msg = Message::parse(bytes).ok()?;
        if msg.header.is_response() || msg.header.opcode() != opcode::NOTIFY {
            return None;
        }
        let serial = msg
            .answers
            .iter()
            .find(|r| r.rtype == rtype::SOA)
            .and_then(|r| Soa::parse(msg.bytes, r.rdata.clone()).ok())
            .map(|s| s.serial)
            .unwrap_or(0);
        lock(&self.notifies).push((serial, Instant::now()));
        let q = msg.questions.first()?;
        let flags = flags::QR | flags::AA | (u16::from(opcode::NOTIFY) << 11);
        let mut b = MessageBuilder::new(msg.header.id, flags);
        b.question(q);
        Some(b.finish())
    }
}

/// The zone as a zone transfer shows it: serial and owner names (relative
/// to the zone, wildcards included).
pub struct Zone {
    pub serial: u32,
    pub owners: std::collections::BTreeSet<String>,
}

/// AXFR `zone` from `primary`, signed with `key`; every message's TSIG is
/// verified (by the toolkit's transfer client, as the resolver reads it).
pub async fn axfr(primary: SocketAddr, zone: &str, key: &TsigKey) -> anyhow::Result<Zone> {
    use tapis_dns::xfr::{self, Ask, Connection, Sequence, Step};
    let zone_name = Name::from_ascii(zone).map_err(|e| anyhow::anyhow!("zone name: {e:?}"))?;
    let request = xfr::request(&zone_name, Ask::Axfr, Some(key));
    let conn = tokio::time::timeout(Duration::from_secs(5), Connection::open(primary, request))
        .await
        .map_err(|_| anyhow::anyhow!("connecting to the RPZ primary {primary} timed out"))??;
    let mut conn = conn.with_read_timeout(Duration::from_secs(5));
    let suffix = format!(".{}", zone.trim_end_matches('.')).to_ascii_lowercase();
    let mut sequence = Sequence::new(&zone_name, None);
    let mut owners = std::collections::BTreeSet::new();
    while sequence.complete().is_none() {
        let m = conn.next_answer(&format!("AXFR of {zone}")).await?;
        let parsed = Message::parse(&m).map_err(|e| anyhow::anyhow!("bad DNS message: {e:?}"))?;
        if parsed.answers.is_empty() {
            anyhow::bail!("the primary sent an empty transfer message");
        }
        for r in &parsed.answers {
            let serial = if r.rtype == rtype::SOA {
                Soa::parse(parsed.bytes, r.rdata.clone()).map_or(0, |s| s.serial)
            } else {
                0
            };
            let step = sequence.push(&r.name, r.rtype, serial)?;
            if step == Step::End {
                break;
            }
            if step == Step::Zone && r.rtype == rtype::CNAME {
                let owner = r.name.to_string().to_ascii_lowercase();
                let owner = owner.trim_end_matches('.');
                if let Some(rel) = owner.strip_suffix(&suffix) {
                    owners.insert(rel.to_owned());
                }
            }
        }
    }
    Ok(Zone {
        serial: sequence.serial(),
        owners,
    })
}

impl Zone {
    /// Whether a resolver enforcing this zone blocks `name` (an exact
    /// owner, or a wildcard owner above it).
    pub fn covers(&self, name: &str) -> bool {
        if self.owners.contains(name) {
            return true;
        }
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            if self.owners.contains(&format!("*.{parent}")) {
                return true;
            }
            rest = parent;
        }
        false
    }
}
