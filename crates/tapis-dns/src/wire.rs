//! DNS wire format, just as much as the RPZ primary needs (RFC 1035):
//! names (compressed when writing, pointer chains checked when reading),
//! the header, a bounds-checked message parser that never panics on any
//! input, a message builder, and the SOA, OPT and TSIG record data.
//!
//! Reading keeps offsets into the original bytes (TSIG needs the exact
//! bytes that were signed); writing compresses owner and target names
//! against everything already in the message.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use thiserror::Error;

/// Length of the fixed message header.
pub const HEADER_LEN: usize = 12;
/// Longest name in wire form (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label.
pub const MAX_LABEL_LEN: usize = 63;

/// Record types used here.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const OPT: u16 = 41;
    pub const ZONEMD: u16 = 63;
    pub const TKEY: u16 = 249;
    pub const TSIG: u16 = 250;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const MAILB: u16 = 253;
    pub const MAILA: u16 = 254;
    pub const ANY: u16 = 255;
}

/// Classes used here.
pub mod class {
    pub const IN: u16 = 1;
    pub const NONE: u16 = 254;
    pub const ANY: u16 = 255;
}

/// Opcodes used here.
pub mod opcode {
    pub const QUERY: u8 = 0;
    pub const NOTIFY: u8 = 4;
    pub const UPDATE: u8 = 5;
}

/// A response code: the 4 bits in the header, extended to 12 bits by EDNS.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rcode(pub u16);

impl Rcode {
    pub const NOERROR: Rcode = Rcode(0);
    pub const FORMERR: Rcode = Rcode(1);
    pub const SERVFAIL: Rcode = Rcode(2);
    pub const NXDOMAIN: Rcode = Rcode(3);
    pub const NOTIMP: Rcode = Rcode(4);
    pub const REFUSED: Rcode = Rcode(5);
    pub const NOTAUTH: Rcode = Rcode(9);
    pub const NOTZONE: Rcode = Rcode(10);
    /// Extended (needs OPT): the EDNS version is not supported.
    pub const BADVERS: Rcode = Rcode(16);

    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            6 => "YXDOMAIN",
            7 => "YXRRSET",
            8 => "NXRRSET",
            9 => "NOTAUTH",
            10 => "NOTZONE",
            16 => "BADVERS",
            _ => return None,
        })
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "RCODE{}", self.0),
        }
    }
}

impl fmt::Debug for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The TSIG record's error field (RFC 8945 §4.3; shares numbers with
/// [`Rcode`] below 16, but 16 means BADSIG here).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TsigRcode(pub u16);

impl TsigRcode {
    pub const NOERROR: TsigRcode = TsigRcode(0);
    pub const BADSIG: TsigRcode = TsigRcode(16);
    pub const BADKEY: TsigRcode = TsigRcode(17);
    pub const BADTIME: TsigRcode = TsigRcode(18);
    pub const BADTRUNC: TsigRcode = TsigRcode(22);
}

impl fmt::Display for TsigRcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            16 => f.write_str("BADSIG"),
            17 => f.write_str("BADKEY"),
            18 => f.write_str("BADTIME"),
            22 => f.write_str("BADTRUNC"),
            n => fmt::Display::fmt(&Rcode(n), f),
        }
    }
}

impl fmt::Debug for TsigRcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why bytes are not a DNS message (or a name is not a DNS name).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("message ends early")]
    Short,
    #[error("name longer than 255 octets")]
    NameTooLong,
    #[error("label longer than 63 octets")]
    LabelTooLong,
    #[error("empty label")]
    EmptyLabel,
    #[error("character {0:?} is not allowed in a name")]
    BadCharacter(char),
    #[error("compression pointer loops or points forward")]
    BadPointer,
    #[error("unknown label type")]
    BadLabelType,
    #[error("bytes after the last record")]
    TrailingBytes,
    #[error("record data does not match its type")]
    BadRdata,
}

/// A domain name in uncompressed wire form (always absolute, case kept).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name {
    wire: Vec<u8>,
}

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name { wire: vec![0] }
    }

    /// Parses presentation text (`rpz.tapis.` or `rpz.tapis`: both
    /// absolute). Escapes are not supported: any byte outside printable
    /// ASCII, a space or a backslash is refused.
    pub fn from_ascii(text: &str) -> Result<Name, WireError> {
        let mut wire = Vec::with_capacity(text.len() + 2);
        push_labels(&mut wire, text)?;
        wire.push(0);
        if wire.len() > MAX_NAME_LEN {
            return Err(WireError::NameTooLong);
        }
        Ok(Name { wire })
    }

    /// `relative` (e.g. `judi.example` or `*.judi.example`) below `origin`.
    pub fn relative_to(relative: &str, origin: &Name) -> Result<Name, WireError> {
        let mut wire = Vec::with_capacity(relative.len() + origin.wire.len() + 1);
        push_labels(&mut wire, relative)?;
        wire.extend_from_slice(&origin.wire);
        if wire.len() > MAX_NAME_LEN {
            return Err(WireError::NameTooLong);
        }
        Ok(Name { wire })
    }

    /// The uncompressed wire form, ending with the root label.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    pub fn is_root(&self) -> bool {
        self.wire.len() == 1
    }

    /// The same name in lower case (the canonical form TSIG digests).
    pub fn to_lowercase(&self) -> Name {
        Name {
            wire: self.wire.to_ascii_lowercase(),
        }
    }

    /// Equality as DNS compares names (ASCII case-insensitive).
    pub fn eq_ignore_case(&self, other: &Name) -> bool {
        self.wire.eq_ignore_ascii_case(&other.wire)
    }

    /// The labels, without the root.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let mut i = 0;
        std::iter::from_fn(move || {
            let len = *self.wire.get(i)? as usize;
            if len == 0 {
                return None;
            }
            let label = self.wire.get(i + 1..i + 1 + len)?;
            i += 1 + len;
            Some(label)
        })
    }

    /// Whether this name is `other` or below it.
    pub fn ends_with(&self, other: &Name) -> bool {
        // Walk label boundaries so `xrpz.tapis.` is not below `rpz.tapis.`.
        let mut i = 0;
        loop {
            let rest = &self.wire[i..];
            if rest.len() == other.wire.len() {
                return rest.eq_ignore_ascii_case(&other.wire);
            }
            if rest.len() < other.wire.len() || rest[0] == 0 {
                return false;
            }
            i += 1 + rest[0] as usize;
        }
    }
}

fn push_labels(wire: &mut Vec<u8>, text: &str) -> Result<(), WireError> {
    let text = text.strip_suffix('.').unwrap_or(text);
    if text.is_empty() {
        return Ok(());
    }
    for label in text.split('.') {
        if label.is_empty() {
            return Err(WireError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(WireError::LabelTooLong);
        }
        if let Some(c) = label.chars().find(|c| !c.is_ascii_graphic() || *c == '\\') {
            return Err(WireError::BadCharacter(c));
        }
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
        if wire.len() >= MAX_NAME_LEN {
            return Err(WireError::NameTooLong);
        }
    }
    Ok(())
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &b in label {
                match b {
                    b'.' | b'\\' => write!(f, "\\{}", b as char)?,
                    b if b.is_ascii_graphic() => write!(f, "{}", b as char)?,
                    b => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// Reads a possibly compressed name at `start`; returns it and the offset
/// just after it (after the first pointer, if any). Every pointer must
/// point before the previous one, so a chain always ends.
pub fn read_name(msg: &[u8], start: usize) -> Result<(Name, usize), WireError> {
    let mut wire = Vec::with_capacity(32);
    let mut pos = start;
    let mut end = None;
    let mut limit = start;
    loop {
        let len = *msg.get(pos).ok_or(WireError::Short)?;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    wire.push(0);
                    let end = end.unwrap_or(pos + 1);
                    return Ok((Name { wire }, end));
                }
                let l = len as usize;
                let label = msg.get(pos + 1..pos + 1 + l).ok_or(WireError::Short)?;
                if wire.len() + 1 + l + 1 > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
                wire.push(len);
                wire.extend_from_slice(label);
                pos += 1 + l;
            }
            0xC0 => {
                let low = *msg.get(pos + 1).ok_or(WireError::Short)?;
                let target = (usize::from(len & 0x3F) << 8) | usize::from(low);
                if end.is_none() {
                    end = Some(pos + 2);
                    limit = pos;
                }
                if target >= limit {
                    return Err(WireError::BadPointer);
                }
                limit = target;
                pos = target;
            }
            _ => return Err(WireError::BadLabelType),
        }
    }
}

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

/// Header flag bits.
pub mod flags {
    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
}

impl Header {
    /// The header of `bytes`, if there are at least 12.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        let b = bytes.get(..HEADER_LEN)?;
        let u = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        Some(Header {
            id: u(0),
            flags: u(2),
            qdcount: u(4),
            ancount: u(6),
            nscount: u(8),
            arcount: u(10),
        })
    }

    pub fn is_response(&self) -> bool {
        self.flags & flags::QR != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }

    /// The 4-bit header RCODE.
    pub fn rcode(&self) -> Rcode {
        Rcode(self.flags & 0xF)
    }

    /// Flags for a response to a request with these flags: QR set, opcode
    /// and RD copied, the given RCODE's low 4 bits.
    pub fn response_flags(&self, rcode: Rcode, authoritative: bool) -> u16 {
        let mut f = flags::QR | (self.flags & 0x7800) | (self.flags & flags::RD);
        if authoritative {
            f |= flags::AA;
        }
        f | (rcode.0 & 0xF)
    }
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

/// One resource record, with its data left in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// Where the record data is in the message.
    pub rdata: Range<usize>,
    /// Where the record starts in the message.
    pub start: usize,
}

/// A parsed message (records' data still as offsets into `bytes`).
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub bytes: &'a [u8],
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

impl<'a> Message<'a> {
    /// Parses a whole message; bytes left after the last record are an
    /// error.
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, WireError> {
        let header = Header::parse(bytes).ok_or(WireError::Short)?;
        let mut pos = HEADER_LEN;
        let mut questions = Vec::new();
        for _ in 0..header.qdcount {
            let (name, next) = read_name(bytes, pos)?;
            let fixed = bytes.get(next..next + 4).ok_or(WireError::Short)?;
            questions.push(Question {
                name,
                qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
                qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
            });
            pos = next + 4;
        }
        let mut sections = [Vec::new(), Vec::new(), Vec::new()];
        for (section, count) in
            sections
                .iter_mut()
                .zip([header.ancount, header.nscount, header.arcount])
        {
            for _ in 0..count {
                let start = pos;
                let (name, next) = read_name(bytes, pos)?;
                let fixed = bytes.get(next..next + 10).ok_or(WireError::Short)?;
                let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
                let rdata = next + 10..next + 10 + rdlen;
                if rdata.end > bytes.len() {
                    return Err(WireError::Short);
                }
                section.push(Record {
                    name,
                    rtype: u16::from_be_bytes([fixed[0], fixed[1]]),
                    class: u16::from_be_bytes([fixed[2], fixed[3]]),
                    ttl: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
                    rdata: rdata.clone(),
                    start,
                });
                pos = rdata.end;
            }
        }
        if pos != bytes.len() {
            return Err(WireError::TrailingBytes);
        }
        let [answers, authority, additional] = sections;
        Ok(Message {
            bytes,
            header,
            questions,
            answers,
            authority,
            additional,
        })
    }

    /// The data of a record of this message.
    pub fn rdata(&self, record: &Record) -> &'a [u8] {
        // Offsets were checked when parsing.
        self.bytes.get(record.rdata.clone()).unwrap_or(&[])
    }

    /// All records of the three record sections.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.answers
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
    }
}

/// SOA record data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    pub mname: Name,
    pub rname: Name,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

impl Soa {
    /// Reads SOA data at `rdata` in `msg` (names may be compressed).
    pub fn parse(msg: &[u8], rdata: Range<usize>) -> Result<Soa, WireError> {
        let (mname, next) = read_name(msg, rdata.start)?;
        let (rname, next) = read_name(msg, next)?;
        if next + 20 != rdata.end {
            return Err(WireError::BadRdata);
        }
        let b = msg.get(next..next + 20).ok_or(WireError::Short)?;
        let u = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Ok(Soa {
            mname,
            rname,
            serial: u(0),
            refresh: u(4),
            retry: u(8),
            expire: u(12),
            minimum: u(16),
        })
    }
}

/// Reads a single name filling record data (CNAME, NS).
pub fn parse_name_rdata(msg: &[u8], rdata: Range<usize>) -> Result<Name, WireError> {
    let (name, next) = read_name(msg, rdata.start)?;
    if next != rdata.end {
        return Err(WireError::BadRdata);
    }
    Ok(name)
}

/// TSIG record data (RFC 8945 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigRdata {
    pub algorithm: Name,
    /// Seconds since the epoch (48 bits).
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: TsigRcode,
    pub other: Vec<u8>,
}

impl TsigRdata {
    pub fn parse(msg: &[u8], rdata: Range<usize>) -> Result<TsigRdata, WireError> {
        let (algorithm, mut p) = read_name(msg, rdata.start)?;
        let data = msg.get(..rdata.end).ok_or(WireError::Short)?;
        let mut take = |n: usize| -> Result<&[u8], WireError> {
            let s = data.get(p..p + n).ok_or(WireError::BadRdata)?;
            p += n;
            Ok(s)
        };
        let t = take(6)?;
        let time_signed = t.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let fudge = be16(take(2)?);
        let mac_len = usize::from(be16(take(2)?));
        let mac = take(mac_len)?.to_vec();
        let original_id = be16(take(2)?);
        let error = TsigRcode(be16(take(2)?));
        let other_len = usize::from(be16(take(2)?));
        let other = take(other_len)?.to_vec();
        if p != rdata.end {
            return Err(WireError::BadRdata);
        }
        Ok(TsigRdata {
            algorithm,
            time_signed,
            fudge,
            mac,
            original_id,
            error,
            other,
        })
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// The sections of a message, in the order they must be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Question = 0,
    Answer = 1,
    Authority = 2,
    Additional = 3,
}

/// Record data to write.
#[derive(Debug, Clone, Copy)]
pub enum Rdata<'a> {
    Soa(&'a Soa),
    Ns(&'a Name),
    Cname(&'a Name),
    /// Data written as is (no names to compress).
    Raw(&'a [u8]),
}

/// Builds a message, compressing names against those already written.
pub struct MessageBuilder {
    buf: Vec<u8>,
    names: HashMap<Vec<u8>, u16>,
    counts: [u16; 4],
    section: Section,
}

impl MessageBuilder {
    pub fn new(id: u16, flags: u16) -> MessageBuilder {
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        MessageBuilder {
            buf,
            names: HashMap::new(),
            counts: [0; 4],
            section: Section::Question,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing but the header has been written.
    pub fn is_empty(&self) -> bool {
        self.counts == [0; 4]
    }

    /// Records written to a section so far.
    pub fn count(&self, section: Section) -> u16 {
        self.counts[section as usize]
    }

    pub fn question(&mut self, q: &Question) {
        self.enter(Section::Question);
        self.name(&q.name, true);
        self.buf.extend_from_slice(&q.qtype.to_be_bytes());
        self.buf.extend_from_slice(&q.qclass.to_be_bytes());
    }

    /// Writes a record. Sections must come in order (a record for an
    /// earlier section than the last one written is a bug).
    pub fn record(
        &mut self,
        section: Section,
        owner: &Name,
        rtype: u16,
        class: u16,
        ttl: u32,
        rdata: Rdata<'_>,
    ) {
        self.enter(section);
        self.name(owner, true);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        match rdata {
            Rdata::Soa(soa) => {
                self.name(&soa.mname, true);
                self.name(&soa.rname, true);
                for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
            }
            Rdata::Ns(n) | Rdata::Cname(n) => self.name(n, true),
            Rdata::Raw(b) => self.buf.extend_from_slice(b),
        }
        let rdlen = self.buf.len() - len_at - 2;
        // Record data here is at most two names and 20 octets, or a small
        // raw value built by this crate.
        let rdlen = u16::try_from(rdlen).expect("record data fits in 64 KiB");
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }

    /// An EDNS OPT record advertising `udp_size`, with the extended RCODE
    /// bits of `rcode`.
    pub fn opt(&mut self, udp_size: u16, rcode: Rcode) {
        self.enter(Section::Additional);
        self.buf.push(0);
        self.buf.extend_from_slice(&rtype::OPT.to_be_bytes());
        self.buf.extend_from_slice(&udp_size.to_be_bytes());
        let ttl = u32::from((rcode.0 >> 4) as u8) << 24;
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
    }

    fn enter(&mut self, section: Section) {
        debug_assert!(section >= self.section, "sections out of order");
        self.section = section;
        self.counts[section as usize] = self.counts[section as usize].saturating_add(1);
    }

    fn name(&mut self, name: &Name, compress: bool) {
        let wire = name.wire();
        let mut i = 0;
        while wire[i] != 0 {
            let suffix = &wire[i..];
            if compress {
                if let Some(&off) = self.names.get(suffix) {
                    self.buf.extend_from_slice(&(0xC000 | off).to_be_bytes());
                    return;
                }
                if self.buf.len() < 0x4000 {
                    self.names.insert(suffix.to_vec(), self.buf.len() as u16);
                }
            }
            let l = usize::from(wire[i]);
            self.buf.extend_from_slice(&wire[i..i + 1 + l]);
            i += 1 + l;
        }
        self.buf.push(0);
    }

    /// The finished message.
    pub fn finish(mut self) -> Vec<u8> {
        for (i, c) in self.counts.iter().enumerate() {
            self.buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
        self.buf
    }
}

/// Appends a record with an uncompressed owner to a finished message and
/// counts it in ARCOUNT (TSIG records are added this way after signing).
pub fn append_additional(
    msg: &mut Vec<u8>,
    owner: &Name,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: &[u8],
) {
    msg.extend_from_slice(owner.wire());
    msg.extend_from_slice(&rtype.to_be_bytes());
    msg.extend_from_slice(&class.to_be_bytes());
    msg.extend_from_slice(&ttl.to_be_bytes());
    let rdlen = u16::try_from(rdata.len()).expect("record data built here fits in 64 KiB");
    msg.extend_from_slice(&rdlen.to_be_bytes());
    msg.extend_from_slice(rdata);
    if msg.len() >= HEADER_LEN {
        let ar = u16::from_be_bytes([msg[10], msg[11]]).saturating_add(1);
        msg[10..12].copy_from_slice(&ar.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        let n = Name::from_ascii("Judi.Example.").expect("name");
        assert_eq!(n.wire(), b"\x04Judi\x07Example\x00");
        assert_eq!(n.to_string(), "Judi.Example.");
        assert_eq!(Name::from_ascii(".").expect("root"), Name::root());
        assert_eq!(Name::root().to_string(), ".");
        assert!(Name::from_ascii("a..b").is_err());
        assert!(Name::from_ascii("a b").is_err());
        assert!(Name::from_ascii(&"a".repeat(64)).is_err());
        let long = ["abcdefghi"; 26].join(".");
        assert!(Name::from_ascii(&long).is_err());
        let zone = Name::from_ascii("rpz.tapis").expect("zone");
        let owner = Name::relative_to("*.judi.example", &zone).expect("owner");
        assert_eq!(owner.to_string(), "*.judi.example.rpz.tapis.");
        assert!(owner.ends_with(&zone));
        assert!(zone.ends_with(&zone));
        assert!(!Name::from_ascii("xrpz.tapis").expect("n").ends_with(&zone));
        assert!(!zone.ends_with(&owner));
    }

    #[test]
    fn compression_round_trips() {
        let zone = Name::from_ascii("rpz.tapis").expect("zone");
        let mut b = MessageBuilder::new(7, flags::QR);
        let names: Vec<Name> = ["a.example", "b.a.example", "*.a.example", "other"]
            .iter()
            .map(|o| Name::relative_to(o, &zone).expect("owner"))
            .collect();
        for n in &names {
            b.record(
                Section::Answer,
                n,
                rtype::CNAME,
                class::IN,
                60,
                Rdata::Cname(&Name::root()),
            );
        }
        let bytes = b.finish();
        let m = Message::parse(&bytes).expect("parse");
        let got: Vec<Name> = m.answers.iter().map(|r| r.name.clone()).collect();
        assert_eq!(got, names);
        assert!(bytes.len() < 12 + names.iter().map(|n| n.wire().len() + 11).sum::<usize>());
    }

    #[test]
    fn pointer_loops_are_refused() {
        // A name at 12 that points to itself.
        let mut m = vec![0u8; 12];
        m[5] = 1;
        m.extend_from_slice(&[0xC0, 12, 0, 6, 0, 1]);
        assert_eq!(Message::parse(&m).err(), Some(WireError::BadPointer));
        // Forward pointer.
        let mut m = vec![0u8; 12];
        m[5] = 1;
        m.extend_from_slice(&[0xC0, 14, 0, 0, 6, 0, 1]);
        assert_eq!(Message::parse(&m).err(), Some(WireError::BadPointer));
    }
}
