//! The zone-transfer client, the secondary's side of [`crate::Primary`]:
//! the SOA query (UDP, retried), AXFR and IXFR requests, reading the
//! length-prefixed answer stream over TCP with the TSIG of every message
//! verified against the chain started by the request, and [`Sequence`],
//! which tells record by record where a transfer's records belong
//! (RFC 5936 full zone, RFC 1995 deletions and additions) and when the
//! stream is complete.
//!
//! Used by the resolver's zone followers, the replay's ISP secondary and
//! the primary's own tests, so all three read transfers the same way.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::Error;
use crate::serial::serial_gt;
use crate::tsig::{self, ResponseVerifier, TsigKey, unix_now};
use crate::wire::{
    HEADER_LEN, Message, MessageBuilder, Name, Question, Rcode, Rdata, Record, Section, Soa,
    WireError, class, read_name, rtype,
};
use crate::zonefile::ZoneRecord;

fn transfer_error(text: String) -> Error {
    Error::Transfer(text)
}

/// What to ask the primary for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// The whole zone.
    Axfr,
    /// The changes since the serial we hold (RFC 1995).
    Ixfr(u32),
}

/// A transfer request, signed when a key is given.
pub struct Request {
    pub id: u16,
    pub bytes: Vec<u8>,
    /// Verifies the answer's messages (when the request is signed).
    pub verifier: Option<ResponseVerifier>,
}

/// Builds an AXFR or IXFR request for `origin` (an IXFR carries the
/// serial we hold in an SOA in the authority section).
pub fn request(origin: &Name, ask: Ask, key: Option<&TsigKey>) -> Request {
    let id: u16 = rand::random();
    let (qtype, serial) = match ask {
        Ask::Axfr => (rtype::AXFR, None),
        Ask::Ixfr(serial) => (rtype::IXFR, Some(serial)),
    };
    let mut bytes = query(id, origin, qtype, serial);
    let verifier = key.map(|k| tsig::sign_request(&mut bytes, k, unix_now()));
    Request {
        id,
        bytes,
        verifier,
    }
}

/// An unsigned query for `name` and `qtype` with id `id`; `ixfr_serial`
/// adds the SOA an IXFR request carries (only its serial is read).
pub fn query(id: u16, name: &Name, qtype: u16, ixfr_serial: Option<u32>) -> Vec<u8> {
    let mut b = MessageBuilder::new(id, 0);
    b.question(&Question {
        name: name.clone(),
        qtype,
        qclass: class::IN,
    });
    if let Some(serial) = ixfr_serial {
        let soa = Soa {
            mname: Name::root(),
            rname: Name::root(),
            serial,
            refresh: 0,
            retry: 0,
            expire: 0,
            minimum: 0,
        };
        b.record(
            Section::Authority,
            name,
            rtype::SOA,
            class::IN,
            0,
            Rdata::Soa(&soa),
        );
    }
    b.finish()
}

/// Any local address and port of `peer`'s family: where a UDP exchange
/// with `peer` is sent from (the kernel picks a random port).
pub fn any_local(peer: SocketAddr) -> SocketAddr {
    if peer.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    }
}

/// The primary's SOA serial for `origin` (UDP, three tries with a growing
/// wait; the answer must match our id and question and, when `key` is
/// given, carry a valid TSIG).
pub async fn soa_serial(
    primary: SocketAddr,
    origin: &Name,
    key: Option<&TsigKey>,
) -> Result<u32, Error> {
    let id: u16 = rand::random();
    let mut b = MessageBuilder::new(id, 0);
    b.question(&Question {
        name: origin.clone(),
        qtype: rtype::SOA,
        qclass: class::IN,
    });
    let mut q = b.finish();
    let mut verifier = key.map(|k| tsig::sign_request(&mut q, k, unix_now()));
    let local = any_local(primary);
    let io = |what: String| move |e: std::io::Error| transfer_error(format!("{what}: {e}"));
    let sock = UdpSocket::bind(local)
        .await
        .map_err(io("cannot open a UDP socket".into()))?;
    sock.connect(primary)
        .await
        .map_err(io(format!("cannot reach {primary}")))?;
    let mut buf = vec![0u8; 65535];
    for attempt in 0..3u32 {
        sock.send(&q)
            .await
            .map_err(io(format!("cannot send to {primary}")))?;
        let wait = Duration::from_millis(700 << attempt);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(io(format!("SOA query to {primary}"))(e)),
                Err(_) => break,
            };
            let answer = &buf[..n];
            let Ok(m) = Message::parse(answer) else {
                continue;
            };
            if m.header.id != id
                || !m.header.is_response()
                || m.questions
                    .first()
                    .is_none_or(|q| !q.name.eq_ignore_case(origin) || q.qtype != rtype::SOA)
            {
                continue;
            }
            if let Some(v) = verifier.as_mut() {
                v.verify(answer, unix_now())
                    .map_err(|e| transfer_error(format!("SOA answer from {primary}: {e}")))?;
            }
            if m.header.rcode() != Rcode::NOERROR {
                return Err(transfer_error(format!(
                    "{primary} answers {} for the SOA of {origin}",
                    m.header.rcode()
                )));
            }
            let soa = m
                .answers
                .iter()
                .find(|r| r.rtype == rtype::SOA && r.name.eq_ignore_case(origin))
                .ok_or_else(|| {
                    transfer_error(format!(
                        "{primary} has no SOA for {origin} (not authoritative?)"
                    ))
                })?;
            let soa = Soa::parse(answer, soa.rdata.clone())
                .map_err(|e| transfer_error(format!("bad SOA from {primary}: {e}")))?;
            return Ok(soa.serial);
        }
    }
    Err(transfer_error(format!(
        "{primary} did not answer the SOA query for {origin}"
    )))
}

/// A transfer connection: the request sent, the answer's messages read
/// one at a time, each one's TSIG verified when the request was signed.
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    id: Option<u16>,
    verifier: Option<ResponseVerifier>,
    read_timeout: Option<Duration>,
}

impl Connection {
    /// Connects to `primary` and sends `request`; every message read must
    /// answer its id.
    pub async fn open(primary: SocketAddr, request: Request) -> Result<Connection, Error> {
        let mut c = Connection::send(primary, &request.bytes, request.verifier).await?;
        c.id = Some(request.id);
        Ok(c)
    }

    /// Connects and sends any message as it is (tests send odd ones); the
    /// answers are verified with `verifier` when given.
    pub async fn send(
        primary: SocketAddr,
        message: &[u8],
        verifier: Option<ResponseVerifier>,
    ) -> Result<Connection, Error> {
        let mut stream = TcpStream::connect(primary)
            .await
            .map_err(|e| transfer_error(format!("cannot connect to {primary}: {e}")))?;
        write_frame(&mut stream, message)
            .await
            .map_err(|e| transfer_error(format!("cannot send the request to {primary}: {e}")))?;
        Ok(Connection {
            stream,
            peer: primary,
            id: None,
            verifier,
            read_timeout: None,
        })
    }

    /// Gives up on a message that takes longer than `timeout` to arrive.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Connection {
        self.read_timeout = Some(timeout);
        self
    }

    /// The next message, verified; `None` when the primary closed the
    /// connection between messages.
    pub async fn next_message(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let peer = self.peer;
        let read = read_frame(&mut self.stream);
        let frame = match self.read_timeout {
            Some(t) => tokio::time::timeout(t, read)
                .await
                .map_err(|_| transfer_error(format!("the transfer from {peer} stalled")))?,
            None => read.await,
        };
        let Some(m) =
            frame.map_err(|e| transfer_error(format!("transfer from {peer} ended early: {e}")))?
        else {
            return Ok(None);
        };
        if let Some(id) = self.id
            && (m.len() < HEADER_LEN || u16::from_be_bytes([m[0], m[1]]) != id)
        {
            return Err(transfer_error(format!(
                "{peer} sent a message that does not answer our request"
            )));
        }
        if let Some(v) = self.verifier.as_mut() {
            v.verify(&m, unix_now())
                .map_err(|e| transfer_error(format!("{peer}: {e}")))?;
        }
        Ok(Some(m))
    }

    /// The next message, parsed, refused unless its RCODE is NOERROR;
    /// `what` names the transfer in errors (e.g. `AXFR of rpz.tapis.`).
    pub async fn next_answer(&mut self, what: &str) -> Result<Vec<u8>, Error> {
        let peer = self.peer;
        let m = self
            .next_message()
            .await?
            .ok_or_else(|| transfer_error(format!("transfer from {peer} ended early")))?;
        let rcode = Message::parse(&m)
            .map_err(|e| transfer_error(format!("{peer} sent a malformed message: {e}")))?
            .header
            .rcode();
        if rcode != Rcode::NOERROR {
            return Err(transfer_error(format!(
                "{peer} refused the {what}: {rcode}"
            )));
        }
        Ok(m)
    }
}

async fn write_frame(stream: &mut TcpStream, m: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(m.len())
        .map_err(|_| std::io::Error::other("message longer than 65535 octets"))?;
    let mut framed = Vec::with_capacity(m.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(m);
    stream.write_all(&framed).await
}

/// One length-prefixed message; `None` at end of stream before a length.
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut m = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut m).await?;
    Ok(Some(m))
}

/// A record of a transfer message with its data's names decompressed (so
/// it stands alone, as in a zone file).
pub fn zone_record(m: &Message<'_>, r: &Record) -> Result<ZoneRecord, WireError> {
    let raw = m.rdata(r);
    let rdata = match r.rtype {
        rtype::CNAME | rtype::NS | 12 | 39 => {
            let (n, end) = read_name(m.bytes, r.rdata.start)?;
            if end != r.rdata.end {
                return Err(WireError::BadRdata);
            }
            n.wire().to_vec()
        }
        rtype::SOA => {
            let soa = Soa::parse(m.bytes, r.rdata.clone())?;
            let mut d = soa.mname.wire().to_vec();
            d.extend_from_slice(soa.rname.wire());
            for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                d.extend_from_slice(&v.to_be_bytes());
            }
            d
        }
        15 => {
            let (n, end) = read_name(m.bytes, r.rdata.start + 2)?;
            if end != r.rdata.end {
                return Err(WireError::BadRdata);
            }
            let mut d = raw.get(..2).unwrap_or(&[0, 0]).to_vec();
            d.extend_from_slice(n.wire());
            d
        }
        _ => raw.to_vec(),
    };
    Ok(ZoneRecord {
        owner: r.name.clone(),
        rtype: r.rtype,
        class: r.class,
        ttl: r.ttl,
        rdata,
    })
}

/// The serial of uncompressed SOA record data.
pub fn soa_rdata_serial(rdata: &[u8]) -> Option<u32> {
    let t = rdata.get(rdata.len().checked_sub(20)?..)?;
    Some(u32::from_be_bytes([t[0], t[1], t[2], t[3]]))
}

/// Where one record of a transfer belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The opening SOA (the version being sent). A full zone starts with
    /// it: keep it until the next step says which kind of transfer this is.
    Opening,
    /// A record of the full zone (AXFR, or an IXFR answered with the whole
    /// zone). At the first one, the opening SOA belongs to the zone too.
    Zone,
    /// IXFR: a record to delete.
    Delete,
    /// IXFR: a record to add (the new SOA among them).
    Add,
    /// An SOA that only frames an IXFR sequence.
    Framing,
    /// The stream is complete (this record, the closing SOA, is not data).
    End,
}

/// What a complete transfer turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Our serial is current: one SOA.
    UpToDate,
    /// A whole zone.
    Full,
    /// Deletions and additions.
    Incremental,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Second,
    Full,
    Incremental { deleting: bool },
    Done(Kind),
}

/// Reads an AXFR or IXFR answer record by record (RFC 5936 §2.2, RFC 1995
/// §4): the first record is the zone's SOA; after it, an SOA with the
/// serial we hold opens an incremental answer, anything else a full zone;
/// the stream ends with the SOA of the version sent.
#[derive(Debug, Clone)]
pub struct Sequence {
    origin: Name,
    ours: Option<u32>,
    state: State,
    target: u32,
}

impl Sequence {
    /// A reader for a transfer of `origin` asked for from `ours` (IXFR) or
    /// from nothing (AXFR).
    pub fn new(origin: &Name, ours: Option<u32>) -> Sequence {
        Sequence {
            origin: origin.clone(),
            ours,
            state: State::Start,
            target: 0,
        }
    }

    /// The serial being sent (after the opening SOA).
    pub fn serial(&self) -> u32 {
        self.target
    }

    /// What the transfer was, once complete.
    pub fn complete(&self) -> Option<Kind> {
        match self.state {
            State::Done(k) => Some(k),
            _ => None,
        }
    }

    /// Places a record given by owner, type and (for an SOA) serial.
    pub fn push(&mut self, owner: &Name, rtype: u16, soa_serial: u32) -> Result<Step, Error> {
        let apex_soa =
            (rtype == rtype::SOA && owner.eq_ignore_case(&self.origin)).then_some(soa_serial);
        self.step(apex_soa)
    }

    /// Places a record read from a transfer message.
    pub fn push_record(&mut self, r: &ZoneRecord) -> Result<Step, Error> {
        let serial = if r.rtype == rtype::SOA {
            soa_rdata_serial(&r.rdata).unwrap_or(0)
        } else {
            0
        };
        self.push(&r.owner, r.rtype, serial)
    }

    fn step(&mut self, apex_soa: Option<u32>) -> Result<Step, Error> {
        match self.state {
            State::Start => {
                let Some(serial) = apex_soa else {
                    return Err(transfer_error(
                        "the transfer does not start with the zone's SOA".into(),
                    ));
                };
                self.target = serial;
                if let Some(ours) = self.ours
                    && !serial_gt(serial, ours)
                {
                    self.state = State::Done(Kind::UpToDate);
                    return Ok(Step::End);
                }
                self.state = State::Second;
                Ok(Step::Opening)
            }
            State::Second => match apex_soa {
                Some(s) if Some(s) == self.ours => {
                    // IXFR: this SOA opens the first deletion sequence
                    self.state = State::Incremental { deleting: true };
                    Ok(Step::Framing)
                }
                Some(_) => {
                    // an AXFR of an empty zone: SOA, SOA
                    self.state = State::Done(Kind::Full);
                    Ok(Step::End)
                }
                None => {
                    self.state = State::Full;
                    Ok(Step::Zone)
                }
            },
            State::Full => match apex_soa {
                Some(_) => {
                    self.state = State::Done(Kind::Full);
                    Ok(Step::End)
                }
                None => Ok(Step::Zone),
            },
            State::Incremental { deleting } => match apex_soa {
                // end of deletions: this SOA starts the additions
                Some(_) if deleting => {
                    self.state = State::Incremental { deleting: false };
                    Ok(Step::Add)
                }
                Some(s) if s == self.target => {
                    self.state = State::Done(Kind::Incremental);
                    Ok(Step::End)
                }
                Some(_) => {
                    self.state = State::Incremental { deleting: true };
                    Ok(Step::Framing)
                }
                None if deleting => Ok(Step::Delete),
                None => Ok(Step::Add),
            },
            State::Done(_) => Err(transfer_error(
                "records after the end of the transfer".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ours: Option<u32>, apex_soas: &[Option<u32>]) -> (Vec<Step>, Option<Kind>) {
        let mut s = Sequence::new(&Name::from_ascii("rpz.test").expect("n"), ours);
        let steps = apex_soas
            .iter()
            .map(|a| s.step(*a).expect("step"))
            .collect();
        (steps, s.complete())
    }

    #[test]
    fn transfers_are_told_apart_and_ended() {
        use Step::*;
        assert_eq!(
            run(None, &[Some(5), None, None, Some(5)]),
            (vec![Opening, Zone, Zone, End], Some(Kind::Full))
        );
        assert_eq!(
            run(None, &[Some(5), Some(5)]),
            (vec![Opening, End], Some(Kind::Full))
        );
        assert_eq!(run(Some(5), &[Some(5)]), (vec![End], Some(Kind::UpToDate)));
        assert_eq!(
            run(
                Some(3),
                &[
                    Some(5),
                    Some(3),
                    None,
                    Some(4),
                    None,
                    Some(4),
                    Some(5),
                    None,
                    Some(5)
                ]
            ),
            (
                vec![Opening, Framing, Delete, Add, Add, Framing, Add, Add, End],
                Some(Kind::Incremental)
            )
        );
        // an IXFR answered with the whole zone
        assert_eq!(
            run(Some(3), &[Some(5), None, Some(5)]),
            (vec![Opening, Zone, End], Some(Kind::Full))
        );
        assert_eq!(run(None, &[Some(5), None]).1, None, "not complete yet");
        let mut s = Sequence::new(&Name::root(), None);
        assert!(s.step(None).is_err(), "must start with the SOA");
    }
}
