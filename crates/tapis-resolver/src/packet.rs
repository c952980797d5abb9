//! Queries in, answers out, on the hot path: a query is read in place (its
//! name lowercased into a stack buffer) and answers are written into a
//! buffer the caller reuses, so a policy or cache answer allocates nothing.
//!
//! Malformed queries get FORMERR when there is a header to answer, and are
//! dropped otherwise; a response (QR set) is never answered.

use tapis_dns::name::{labels, skip_compressed, skip_name};
use tapis_dns::wire::{HEADER_LEN, Rcode, flags, opcode, rtype};

/// EDNS0 as the client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

/// A parsed query (borrowing the datagram).
#[derive(Clone)]
pub struct Query<'a> {
    pub bytes: &'a [u8],
    pub id: u16,
    pub flags: u16,
    /// End of the question section.
    pub question_end: usize,
    lower: [u8; 255],
    lower_len: usize,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
}

impl std::fmt::Debug for Query<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("id", &self.id)
            .field("qname", &tapis_dns::name::to_text(self.qname_lower()))
            .field("qtype", &self.qtype)
            .finish()
    }
}

/// Why a message is not a query we answer normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// No answer at all (too short to carry an id, or a response).
    Drop,
    /// Answer with this RCODE, header (and question, if readable) only.
    Error(Rcode),
    /// A NOTIFY (RFC 1996): handled by the zone follower.
    Notify,
}

impl<'a> Query<'a> {
    /// The query name, lowercase, uncompressed wire.
    pub fn qname_lower(&self) -> &[u8] {
        &self.lower[..self.lower_len]
    }

    /// The query name as the client wrote it (wire, no compression).
    pub fn qname_wire(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..self.question_end - 4]
    }

    /// The question section as the client sent it.
    pub fn question(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..self.question_end]
    }

    pub fn rd(&self) -> bool {
        self.flags & flags::RD != 0
    }

    /// The largest UDP answer the client takes.
    pub fn udp_limit(&self, ours: u16) -> usize {
        match self.edns {
            Some(e) => usize::from(e.udp_size.clamp(512, ours.max(512))),
            None => 512,
        }
    }

    /// Reads a query. Errors say how to answer.
    pub fn parse(bytes: &'a [u8]) -> Result<Query<'a>, Reject> {
        if bytes.len() < HEADER_LEN {
            return Err(Reject::Drop);
        }
        let u = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let id = u(0);
        let fl = u(2);
        if fl & flags::QR != 0 {
            return Err(Reject::Drop);
        }
        let op = ((fl >> 11) & 0xF) as u8;
        if op == opcode::NOTIFY {
            return Err(Reject::Notify);
        }
        if op != opcode::QUERY {
            return Err(Reject::Error(Rcode::NOTIMP));
        }
        let (qd, an, ns, ar) = (u(4), u(6), u(8), u(10));
        if qd != 1 || an != 0 || ns != 0 {
            return Err(Reject::Error(Rcode::FORMERR));
        }
        let mut lower = [0u8; 255];
        let mut p = HEADER_LEN;
        let mut n = 0;
        loop {
            let &l = bytes.get(p).ok_or(Reject::Error(Rcode::FORMERR))?;
            if l == 0 {
                lower[n] = 0;
                n += 1;
                p += 1;
                break;
            }
            // no compression in a query's only name, no extended labels
            if l > 63 {
                return Err(Reject::Error(Rcode::FORMERR));
            }
            let l = usize::from(l);
            let label = bytes
                .get(p + 1..p + 1 + l)
                .ok_or(Reject::Error(Rcode::FORMERR))?;
            if n + 1 + l + 1 > 255 {
                return Err(Reject::Error(Rcode::FORMERR));
            }
            lower[n] = l as u8;
            for (d, s) in lower[n + 1..n + 1 + l].iter_mut().zip(label) {
                *d = s.to_ascii_lowercase();
            }
            n += 1 + l;
            p += 1 + l;
        }
        let fixed = bytes.get(p..p + 4).ok_or(Reject::Error(Rcode::FORMERR))?;
        let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        let question_end = p + 4;
        let mut p = question_end;
        let mut edns = None;
        for _ in 0..ar {
            // owner name: any (compression allowed), then type/class/ttl/len
            p = skip_compressed(bytes, p).ok_or(Reject::Error(Rcode::FORMERR))?;
            let f = bytes.get(p..p + 10).ok_or(Reject::Error(Rcode::FORMERR))?;
            let t = u16::from_be_bytes([f[0], f[1]]);
            let rdlen = usize::from(u16::from_be_bytes([f[8], f[9]]));
            if t == rtype::OPT {
                if edns.is_some() || bytes[p - 1] != 0 || p - 1 < question_end {
                    return Err(Reject::Error(Rcode::FORMERR));
                }
                edns = Some(Edns {
                    udp_size: u16::from_be_bytes([f[2], f[3]]),
                    version: f[5],
                    dnssec_ok: f[6] & 0x80 != 0,
                });
            }
            p += 10 + rdlen;
            if p > bytes.len() {
                return Err(Reject::Error(Rcode::FORMERR));
            }
        }
        if p != bytes.len() {
            return Err(Reject::Error(Rcode::FORMERR));
        }
        Ok(Query {
            bytes,
            id,
            flags: fl,
            question_end,
            lower,
            lower_len: n,
            qtype,
            qclass,
            edns,
        })
    }
}

/// The answer to a message that is not a usable query: header (with the
/// question when it could be read), and the RCODE. `None`: say nothing.
pub fn error_answer(bytes: &[u8], rcode: Rcode, out: &mut Vec<u8>) -> Option<()> {
    if bytes.len() < HEADER_LEN || bytes[2] & 0x80 != 0 {
        return None;
    }
    out.clear();
    out.extend_from_slice(&bytes[..HEADER_LEN]);
    let fl = u16::from_be_bytes([bytes[2], bytes[3]]);
    let f = flags::QR | (fl & 0x7800) | (fl & flags::RD) | flags::RA | (rcode.0 & 0xF);
    out[2..4].copy_from_slice(&f.to_be_bytes());
    out[4..12].fill(0);
    // echo a readable single question
    let qd = u16::from_be_bytes([bytes[4], bytes[5]]);
    if qd == 1
        && let Some(end) = skip_name(bytes, HEADER_LEN)
        && let Some(q) = bytes.get(HEADER_LEN..end + 4)
    {
        out.extend_from_slice(q);
        out[5] = 1;
    }
    Some(())
}

/// Writes an answer to `q` into `out`: header, the client's question, then
/// records through the methods below, then [`Answer::finish`].
pub struct Answer<'o> {
    out: &'o mut Vec<u8>,
    counts: [u16; 3],
}

impl<'o> Answer<'o> {
    pub fn start(out: &'o mut Vec<u8>, q: &Query<'_>, rcode: Rcode) -> Answer<'o> {
        out.clear();
        out.extend_from_slice(&q.id.to_be_bytes());
        let f = flags::QR | (q.flags & flags::RD) | flags::RA | (rcode.0 & 0xF);
        out.extend_from_slice(&f.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(q.question());
        Answer {
            out,
            counts: [0; 3],
        }
    }

    /// A record whose owner is the query name (a pointer to the question).
    pub fn at_qname(&mut self, section: usize, t: u16, ttl: u32, rdata: &[u8]) {
        self.out.extend_from_slice(&[0xC0, 0x0C]);
        self.fixed(section, t, ttl, rdata);
    }

    /// A record with an uncompressed owner.
    pub fn at(&mut self, section: usize, owner: &[u8], t: u16, ttl: u32, rdata: &[u8]) {
        self.out.extend_from_slice(owner);
        self.fixed(section, t, ttl, rdata);
    }

    fn fixed(&mut self, section: usize, t: u16, ttl: u32, rdata: &[u8]) {
        self.out.extend_from_slice(&t.to_be_bytes());
        self.out.extend_from_slice(&1u16.to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        self.out
            .extend_from_slice(&(rdata.len().min(65535) as u16).to_be_bytes());
        self.out.extend_from_slice(rdata);
        self.counts[section] += 1;
    }

    /// Adds our OPT (with an Extended DNS Error when given) if the client
    /// sent EDNS, sets the counts, and truncates to `limit` (TC, question
    /// only) when the answer is larger.
    pub fn finish(self, q: &Query<'_>, our_udp: u16, ede: Option<Ede<'_>>, limit: usize) {
        let out = self.out;
        for (i, c) in self.counts.iter().enumerate() {
            out[6 + 2 * i..8 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
        if q.edns.is_some() {
            push_opt(out, our_udp, ede.as_ref(), 0);
        }
        if out.len() > limit {
            truncate(out, q, our_udp);
        }
    }
}

/// Extended DNS Error (RFC 8914): info code and extra text (written as
/// `<reference>; see <url>?name=<qname>`).
pub struct Ede<'a> {
    pub code: u16,
    pub reference: Option<&'a str>,
    pub lookup_url: Option<&'a str>,
    pub qname: &'a [u8],
}

/// Appends an OPT record (and counts it). `ext_rcode` is the upper 8 bits.
pub fn push_opt(out: &mut Vec<u8>, udp: u16, ede: Option<&Ede<'_>>, ext_rcode: u8) {
    out.push(0);
    out.extend_from_slice(&rtype::OPT.to_be_bytes());
    out.extend_from_slice(&udp.to_be_bytes());
    out.extend_from_slice(&[ext_rcode, 0, 0, 0]);
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    if let Some(e) = ede {
        out.extend_from_slice(&15u16.to_be_bytes());
        let opt_len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&e.code.to_be_bytes());
        if let Some(r) = e.reference {
            out.extend_from_slice(r.as_bytes());
            if let Some(url) = e.lookup_url {
                out.extend_from_slice(b"; see ");
                out.extend_from_slice(url.as_bytes());
                out.extend_from_slice(b"?name=");
                push_name_text(out, e.qname);
            }
        }
        let l = (out.len() - opt_len_at - 2) as u16;
        out[opt_len_at..opt_len_at + 2].copy_from_slice(&l.to_be_bytes());
    }
    let l = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&l.to_be_bytes());
    let ar = u16::from_be_bytes([out[10], out[11]]).saturating_add(1);
    out[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// A name as text without the final dot, unusual bytes percent-encoded (it
/// goes into a URL).
fn push_name_text(out: &mut Vec<u8>, wire: &[u8]) {
    for (i, label) in labels(wire).enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        for &b in label {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                out.push(b);
            } else {
                out.extend_from_slice(format!("%{b:02X}").as_bytes());
            }
        }
    }
}

/// Cuts an answer down to header and question with TC set (RFC 2181 §9:
/// the client retries over TCP), keeping the OPT record.
pub fn truncate(out: &mut Vec<u8>, q: &Query<'_>, our_udp: u16) {
    out.truncate(q.question_end);
    out[2] |= (flags::TC >> 8) as u8;
    out[6..12].fill(0);
    if q.edns.is_some() {
        push_opt(out, our_udp, None, 0);
    }
}

/// The EDNS answer to an unsupported EDNS version: BADVERS (RCODE 16).
pub fn badvers(out: &mut Vec<u8>, q: &Query<'_>, our_udp: u16) {
    Answer::start(out, q, Rcode::NOERROR).finish(q, our_udp, None, usize::MAX);
    // finish() added an OPT with extended RCODE 0: rewrite it as 16 >> 4 = 1
    let n = out.len();
    // OPT fixed part: name(1) type(2) class(2) ttl(4) rdlen(2)
    out[n - 6] = (Rcode::BADVERS.0 >> 4) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], edns: Option<u16>) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        if let Some(size) = edns {
            q[11] = 1;
            q.extend_from_slice(&[0, 0, 41]);
            q.extend_from_slice(&size.to_be_bytes());
            q.extend_from_slice(&[0, 0, 0x80, 0, 0, 0]);
        }
        q
    }

    #[test]
    fn reads_queries_and_edns() {
        let b = query(b"\x03WwW\x07Example\x00", Some(4096));
        let q = Query::parse(&b).expect("query");
        assert_eq!(q.qname_lower(), b"\x03www\x07example\x00");
        assert_eq!(q.qname_wire(), b"\x03WwW\x07Example\x00");
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_size: 4096,
                version: 0,
                dnssec_ok: true
            })
        );
        assert_eq!(q.udp_limit(1232), 1232);
        let b = query(b"\x00", None);
        assert_eq!(Query::parse(&b).expect("root").udp_limit(1232), 512);
    }

    #[test]
    fn refuses_what_is_not_a_plain_query() {
        let mut two_opt = query(b"\x01a\x00", Some(512));
        two_opt[11] = 2;
        two_opt.extend_from_slice(&[0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0]);
        let mut response = query(b"\x01a\x00", None);
        response[2] |= 0x80;
        let mut pointer = query(b"\xc0\x0c", None);
        pointer.truncate(pointer.len());
        let mut update = query(b"\x01a\x00", None);
        update[2] = 5 << 3;
        let mut notify = query(b"\x01a\x00", None);
        notify[2] = 4 << 3;
        let mut two_q = query(b"\x01a\x00", None);
        two_q[5] = 2;
        let mut trailing = query(b"\x01a\x00", None);
        trailing.push(0);
        for (b, want) in [
            (vec![0u8; 5], Reject::Drop),
            (response, Reject::Drop),
            (two_opt, Reject::Error(Rcode::FORMERR)),
            (pointer, Reject::Error(Rcode::FORMERR)),
            (update, Reject::Error(Rcode::NOTIMP)),
            (notify, Reject::Notify),
            (two_q, Reject::Error(Rcode::FORMERR)),
            (trailing, Reject::Error(Rcode::FORMERR)),
        ] {
            assert_eq!(Query::parse(&b).err(), Some(want), "{b:?}");
        }
    }

    #[test]
    fn truncates_to_the_client_limit_with_tc() {
        let b = query(b"\x01a\x00", None);
        let q = Query::parse(&b).expect("q");
        let mut out = Vec::new();
        let mut a = Answer::start(&mut out, &q, Rcode::NOERROR);
        for _ in 0..60 {
            a.at_qname(0, rtype::TXT, 60, &[9; 10]);
        }
        a.finish(&q, 1232, None, q.udp_limit(1232));
        assert_eq!(out.len(), q.question_end);
        assert_ne!(out[2] & 0x02, 0, "TC");
        assert_eq!(&out[6..12], &[0; 6]);
    }
}
