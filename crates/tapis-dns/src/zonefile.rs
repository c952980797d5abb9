//! Zone files (RFC 1035 §5) as far as policy zones need them: `$TTL`,
//! `$ORIGIN`, comments, parentheses, blank owners (a line starting with
//! white space continues the previous owner), `@`, relative names, escapes,
//! and the types SOA, NS, CNAME, DNAME, PTR, MX, A, AAAA, TXT, ZONEMD plus RFC 3597
//! generic data (`TYPE65 \# 3 abcdef`). The writer produces the same
//! dialect.
//!
//! One reader for every caller: the resolver loads file zones and its local
//! snapshots through [`parse`] (the first bad entry fails the file), and
//! `tapis import` walks the [`Reader`] itself, turning each bad entry into
//! a line-numbered rejection and carrying on. A [`LineError`] always names
//! the line the entry starts on.

use std::fmt;
use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::name::{from_wire as name_from_wire, skip_name, to_text as name_text};
use crate::wire::{Name, rtype};

/// One resource record of a zone, names uncompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRecord {
    pub owner: Name,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

/// An entry that cannot be read, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
    /// The file could not be read at all from here on (not a bad entry).
    pub io: bool,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LineError {}

/// One record read, with where it came from.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The line the entry starts on (1-based).
    pub line: usize,
    /// The `$ORIGIN` in force for it.
    pub origin: Name,
    pub record: ZoneRecord,
}

/// Reads a zone file entry by entry. After a bad entry it carries on with
/// the next one (an I/O error or an unclosed `(` ends the file).
pub struct Reader<R> {
    lines: std::io::Lines<R>,
    origin: Name,
    default_ttl: Option<u32>,
    last_owner: Option<Name>,
    line: usize,
    bytes: usize,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    /// A reader of `reader` whose relative names are below `origin` until a
    /// `$ORIGIN` says otherwise.
    pub fn new(reader: R, origin: &Name) -> Reader<R> {
        Reader {
            lines: reader.lines(),
            origin: origin.clone(),
            default_ttl: None,
            last_owner: None,
            line: 0,
            bytes: 0,
            done: false,
        }
    }

    /// Use `ttl` for records without one before any `$TTL` (instead of
    /// refusing them): for readers that do not keep TTLs.
    pub fn with_default_ttl(mut self, ttl: u32) -> Reader<R> {
        self.default_ttl = Some(ttl);
        self
    }

    /// Bytes read so far (each line and its newline).
    pub fn bytes_read(&self) -> usize {
        self.bytes
    }

    /// The next logical entry's text (parentheses joined) and its first
    /// line; `None` at the end.
    fn next_entry(&mut self) -> Option<Result<(String, usize), LineError>> {
        let mut pending = String::new();
        let mut depth = 0i32;
        let mut start_line = 0usize;
        loop {
            let Some(line) = self.lines.next() else {
                self.done = true;
                if depth != 0 {
                    return Some(Err(LineError {
                        line: start_line,
                        message: "'(' is never closed".into(),
                        io: false,
                    }));
                }
                return None;
            };
            self.line += 1;
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    self.done = true;
                    return Some(Err(LineError {
                        line: self.line,
                        message: e.to_string(),
                        io: true,
                    }));
                }
            };
            self.bytes += line.len() + 1;
            let stripped = strip_comment(&line);
            if depth == 0 {
                start_line = self.line;
            } else {
                pending.push(' ');
            }
            for c in stripped.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
            }
            pending.push_str(&stripped.replace(['(', ')'], " "));
            if depth < 0 {
                return Some(Err(LineError {
                    line: self.line,
                    message: "unbalanced ')'".into(),
                    io: false,
                }));
            }
            if depth == 0 && !pending.trim().is_empty() {
                return Some(Ok((pending, start_line)));
            }
            if depth == 0 {
                pending.clear();
            }
        }
    }

    /// Reads one entry's text: `Ok(None)` for a directive.
    fn entry(&mut self, entry: &str) -> Result<Option<ZoneRecord>, String> {
        let tokens = tokenize(entry)?;
        let blank_owner = entry.starts_with([' ', '\t']);
        let mut t = tokens.iter().map(String::as_str).peekable();
        if !blank_owner && let Some(first) = t.peek().copied() {
            if first.eq_ignore_ascii_case("$TTL") {
                t.next();
                self.default_ttl = Some(parse_ttl(t.next().ok_or("$TTL needs a value")?)?);
                return Ok(None);
            }
            if first.eq_ignore_ascii_case("$ORIGIN") {
                t.next();
                let o = t.next().ok_or("$ORIGIN needs a name")?;
                self.origin = parse_name(o, &self.origin)?;
                return Ok(None);
            }
            if first.starts_with('$') {
                return Err(format!("directive {first} is not supported"));
            }
        }
        let owner = if blank_owner {
            self.last_owner
                .clone()
                .ok_or("a record without an owner comes first")?
        } else {
            let o = t.next().ok_or("missing owner")?;
            parse_name(o, &self.origin)?
        };
        self.last_owner = Some(owner.clone());
        let mut ttl = None;
        let mut class = 1u16;
        let rtype_text = loop {
            let tok = t.next().ok_or("missing record type")?;
            if tok.eq_ignore_ascii_case("IN") {
                class = 1;
            } else if tok.eq_ignore_ascii_case("CH") || tok.eq_ignore_ascii_case("HS") {
                return Err(format!("class {tok} is not supported"));
            } else if ttl.is_none() && tok.starts_with(|c: char| c.is_ascii_digit()) {
                ttl = Some(parse_ttl(tok)?);
            } else {
                break tok;
            }
        };
        let rt = parse_type(rtype_text)?;
        let rest: Vec<&str> = t.collect();
        let rdata = parse_rdata(rt, &rest, &self.origin)?;
        let ttl = match (ttl, self.default_ttl) {
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) if rt == rtype::SOA => soa_minimum(&rdata).unwrap_or(3600),
            (None, None) => return Err("no TTL and no $TTL before it".into()),
        };
        if rt == rtype::SOA && self.default_ttl.is_none() {
            self.default_ttl = Some(ttl);
        }
        Ok(Some(ZoneRecord {
            owner,
            rtype: rt,
            class,
            ttl,
            rdata,
        }))
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Entry, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let (text, line) = match self.next_entry()? {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            match self.entry(&text) {
                Ok(Some(record)) => {
                    return Some(Ok(Entry {
                        line,
                        origin: self.origin.clone(),
                        record,
                    }));
                }
                Ok(None) => {}
                Err(message) => {
                    return Some(Err(LineError {
                        line,
                        message,
                        io: false,
                    }));
                }
            }
        }
        None
    }
}

/// Reads every record of a zone file with the given origin, calling `f`
/// for each; the first bad entry stops the reading.
pub fn parse<E: From<LineError>>(
    reader: impl BufRead,
    origin: &Name,
    mut f: impl FnMut(ZoneRecord) -> Result<(), E>,
) -> Result<(), E> {
    for entry in Reader::new(reader, origin) {
        f(entry?.record)?;
    }
    Ok(())
}

fn soa_minimum(rdata: &[u8]) -> Option<u32> {
    let t = rdata.get(rdata.len().checked_sub(4)?..)?;
    Some(u32::from_be_bytes([t[0], t[1], t[2], t[3]]))
}

fn strip_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in line.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ';' && !quoted {
            break;
        }
        out.push(c);
    }
    out
}

/// Splits on whitespace, keeping quoted strings (with their quotes).
fn tokenize(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                cur.push(c);
                if quoted {
                    out.push(std::mem::take(&mut cur));
                }
                quoted = !quoted;
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted string".into());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn parse_ttl(s: &str) -> Result<u32, String> {
    let mut total: u64 = 0;
    let mut num: u64 = 0;
    let mut any = false;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            num = num * 10 + u64::from(d);
            any = true;
            if num > u64::from(u32::MAX) {
                return Err(format!("TTL {s} is too large"));
            }
        } else {
            let mult = match c.to_ascii_lowercase() {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                'w' => 604_800,
                _ => return Err(format!("{s:?} is not a TTL")),
            };
            total += num * mult;
            num = 0;
        }
    }
    if !any {
        return Err(format!("{s:?} is not a TTL"));
    }
    u32::try_from(total + num).map_err(|_| format!("TTL {s} is too large"))
}

fn parse_type(s: &str) -> Result<u16, String> {
    let u = s.to_ascii_uppercase();
    Ok(match u.as_str() {
        "A" => rtype::A,
        "NS" => rtype::NS,
        "CNAME" => rtype::CNAME,
        "SOA" => rtype::SOA,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => rtype::TXT,
        "AAAA" => rtype::AAAA,
        "DNAME" => 39,
        "ZONEMD" => rtype::ZONEMD,
        _ => match u.strip_prefix("TYPE").and_then(|n| n.parse::<u16>().ok()) {
            Some(n) => n,
            None => {
                return Err(format!(
                    "record type {s} is not supported (use TYPEnn \\# …)"
                ));
            }
        },
    })
}

/// Presentation name (escapes allowed) to a `Name`, relative to `origin`
/// unless it ends with a dot.
pub fn parse_name(s: &str, origin: &Name) -> Result<Name, String> {
    if s == "@" {
        return Ok(origin.clone());
    }
    if s == "." {
        return Ok(Name::root());
    }
    let bytes = s.as_bytes();
    let mut wire = Vec::with_capacity(s.len() + origin.wire().len() + 2);
    let mut label: Vec<u8> = Vec::with_capacity(63);
    let mut i = 0;
    let mut absolute = false;
    let flush = |wire: &mut Vec<u8>, label: &mut Vec<u8>| -> Result<(), String> {
        if label.is_empty() {
            return Err(format!("{s:?}: empty label"));
        }
        if label.len() > 63 {
            return Err(format!("{s:?}: label longer than 63 octets"));
        }
        wire.push(label.len() as u8);
        wire.append(label);
        Ok(())
    };
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\\' => {
                let d = bytes.get(i + 1..i + 4);
                if let Some(d) = d.filter(|d| d.iter().all(u8::is_ascii_digit)) {
                    let v = d.iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
                    label.push(u8::try_from(v).map_err(|_| format!("{s:?}: bad escape"))?);
                    i += 4;
                } else {
                    let &e = bytes
                        .get(i + 1)
                        .ok_or_else(|| format!("{s:?}: bad escape"))?;
                    label.push(e);
                    i += 2;
                }
            }
            b'.' => {
                flush(&mut wire, &mut label)?;
                i += 1;
                if i == bytes.len() {
                    absolute = true;
                }
            }
            c => {
                label.push(c);
                i += 1;
            }
        }
    }
    if !label.is_empty() {
        flush(&mut wire, &mut label)?;
    }
    if absolute {
        wire.push(0);
    } else {
        wire.extend_from_slice(origin.wire());
    }
    if wire.len() > 255 {
        return Err(format!("{s:?}: name longer than 255 octets"));
    }
    name_from_wire(&wire).ok_or_else(|| format!("{s:?} is not a domain name"))
}

fn parse_rdata(rt: u16, t: &[&str], origin: &Name) -> Result<Vec<u8>, String> {
    if t.first() == Some(&"\\#") {
        let len: usize = t
            .get(1)
            .and_then(|l| l.parse().ok())
            .ok_or("\\# needs a length")?;
        let hex: String = t[2..].concat();
        let data = hex_decode(&hex).ok_or("bad hex in \\# data")?;
        if data.len() != len {
            return Err(format!("\\# says {len} octets, has {}", data.len()));
        }
        return Ok(data);
    }
    let one = |i: usize| {
        t.get(i)
            .copied()
            .ok_or_else(|| "missing record data".to_string())
    };
    let mut out = Vec::new();
    match rt {
        rtype::A => {
            let a: Ipv4Addr = one(0)?
                .parse()
                .map_err(|_| format!("{:?} is not an IPv4 address", t[0]))?;
            out.extend_from_slice(&a.octets());
        }
        rtype::AAAA => {
            let a: Ipv6Addr = one(0)?
                .parse()
                .map_err(|_| format!("{:?} is not an IPv6 address", t[0]))?;
            out.extend_from_slice(&a.octets());
        }
        rtype::NS | rtype::CNAME | 12 | 39 => {
            out.extend_from_slice(parse_name(one(0)?, origin)?.wire());
        }
        15 => {
            let pref: u16 = one(0)?.parse().map_err(|_| "bad MX preference")?;
            out.extend_from_slice(&pref.to_be_bytes());
            out.extend_from_slice(parse_name(one(1)?, origin)?.wire());
        }
        rtype::SOA => {
            out.extend_from_slice(parse_name(one(0)?, origin)?.wire());
            out.extend_from_slice(parse_name(one(1)?, origin)?.wire());
            for i in 2..7 {
                out.extend_from_slice(&parse_ttl(one(i)?)?.to_be_bytes());
            }
        }
        rtype::TXT => {
            if t.is_empty() {
                return Err("TXT needs a string".into());
            }
            for s in t {
                let s = s
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .unwrap_or(s);
                let bytes = unescape(s)?;
                let l = u8::try_from(bytes.len()).map_err(|_| "TXT string longer than 255")?;
                out.push(l);
                out.extend_from_slice(&bytes);
            }
        }
        rtype::ZONEMD => {
            // RFC 8976 §2.3: serial, scheme, hash algorithm, digest in hex
            // (which may be split by white space)
            let serial: u32 = one(0)?.parse().map_err(|_| "bad ZONEMD serial")?;
            let scheme: u8 = one(1)?.parse().map_err(|_| "bad ZONEMD scheme")?;
            let alg: u8 = one(2)?.parse().map_err(|_| "bad ZONEMD hash algorithm")?;
            let hex: String = t.get(3..).unwrap_or_default().concat();
            let digest = hex_decode(&hex).ok_or("bad hex in the ZONEMD digest")?;
            if digest.len() < 12 {
                return Err("a ZONEMD digest is at least 12 octets".into());
            }
            out.extend_from_slice(&serial.to_be_bytes());
            out.push(scheme);
            out.push(alg);
            out.extend_from_slice(&digest);
        }
        _ => return Err("use RFC 3597 \\# syntax for this type".into()),
    }
    if out.len() > 65535 {
        return Err("record data too long".into());
    }
    Ok(out)
}

fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(d) = b
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(u8::is_ascii_digit))
            {
                let v = d.iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'));
                out.push(u8::try_from(v).map_err(|_| "bad escape")?);
                i += 4;
            } else {
                out.push(*b.get(i + 1).ok_or("bad escape")?);
                i += 2;
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Writes one record as a zone-file line.
pub fn write_record(w: &mut impl Write, r: &ZoneRecord) -> std::io::Result<()> {
    let owner = name_text(r.owner.wire());
    let d = &r.rdata;
    let data = match r.rtype {
        rtype::A if d.len() == 4 => Some(format!("A {}", Ipv4Addr::new(d[0], d[1], d[2], d[3]))),
        rtype::AAAA if d.len() == 16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(d);
            Some(format!("AAAA {}", Ipv6Addr::from(o)))
        }
        rtype::CNAME | rtype::NS if skip_name(d, 0) == Some(d.len()) => Some(format!(
            "{} {}",
            if r.rtype == rtype::CNAME {
                "CNAME"
            } else {
                "NS"
            },
            name_text(d)
        )),
        rtype::SOA => {
            let a = skip_name(d, 0);
            let b = a.and_then(|a| skip_name(d, a));
            match (a, b) {
                (Some(a), Some(b)) if b + 20 == d.len() => {
                    let u = |i: usize| u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
                    Some(format!(
                        "SOA {} {} {} {} {} {} {}",
                        name_text(&d[..a]),
                        name_text(&d[a..b]),
                        u(b),
                        u(b + 4),
                        u(b + 8),
                        u(b + 12),
                        u(b + 16)
                    ))
                }
                _ => None,
            }
        }
        rtype::TXT => {
            let mut s = String::from("TXT");
            let mut p = 0;
            let mut ok = true;
            while p < d.len() {
                let l = usize::from(d[p]);
                let Some(chunk) = d.get(p + 1..p + 1 + l) else {
                    ok = false;
                    break;
                };
                s.push_str(" \"");
                for &b in chunk {
                    if b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b';' || b == b' ' {
                        s.push(char::from(b));
                    } else {
                        s.push_str(&format!("\\{b:03}"));
                    }
                }
                s.push('"');
                p += 1 + l;
            }
            ok.then_some(s)
        }
        _ => None,
    };
    let data = data.unwrap_or_else(|| {
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        if d.is_empty() {
            format!("TYPE{} \\# 0", r.rtype)
        } else {
            format!("TYPE{} \\# {} {hex}", r.rtype, d.len())
        }
    });
    writeln!(w, "{owner} {} IN {data}", r.ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_third_party_style_zone_and_round_trips() {
        let text = "$TTL 3600\n@ SOA localhost. root.localhost. (1 43200\n 3600 259200 3600 ) ; c\n  NS  localhost.\n; comment\nbad.example CNAME .\n*.bad.example CNAME .\nw.example 60 IN A 10.0.0.1\nw.example AAAA ::1\nt.example TXT \"a b\" \"c;d\"\nx.example TYPE65 \\# 3 abcdef\nesc\\.dot.example. CNAME rpz-drop.\n";
        let origin = Name::from_ascii("rpz.test").expect("origin");
        let mut recs = Vec::new();
        parse(text.as_bytes(), &origin, |r| {
            recs.push(r);
            Ok::<_, LineError>(())
        })
        .expect("parse");
        assert_eq!(recs.len(), 9);
        assert_eq!(recs[0].rtype, rtype::SOA);
        assert_eq!(recs[1].owner, origin);
        assert_eq!(recs[2].owner.to_string(), "bad.example.rpz.test.");
        assert_eq!(recs[2].rdata, vec![0]);
        assert_eq!(recs[4].ttl, 60);
        assert_eq!(recs[6].rdata, b"\x03a b\x03c;d".to_vec());
        assert_eq!(recs[8].owner.wire(), b"\x07esc.dot\x07example\x00");
        let mut out = Vec::new();
        for r in &recs {
            write_record(&mut out, r).expect("write");
        }
        let mut again = Vec::new();
        parse(out.as_slice(), &origin, |r| {
            again.push(r);
            Ok::<_, LineError>(())
        })
        .expect("reparse");
        assert_eq!(again, recs);
    }

    #[test]
    fn bad_input_is_an_error_with_a_line_number() {
        let origin = Name::from_ascii("rpz.test").expect("origin");
        for (text, want) in [
            ("$TTL 60\nx CNAME\n", "line 2"),
            ("$TTL 60\nx A 300.1.1.1\n", "line 2"),
            ("x CNAME .\n", "line 1"),
            ("$TTL 60\n@ SOA a. b. ( 1 2 3 4 5\n", "line 2"),
            ("$INCLUDE /etc/passwd\n", "line 1"),
            ("$TTL 60\nx BOGUS 1\n", "line 2"),
        ] {
            let err = parse(text.as_bytes(), &origin, |_| Ok::<_, LineError>(())).expect_err(text);
            assert!(err.to_string().contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_reader_carries_on_after_a_bad_entry() {
        let origin = Name::from_ascii("rpz.test").expect("origin");
        let text = "$TTL 60\nx CNAME\ny CNAME .\n  TXT \"z\"\n$INCLUDE x\n$ORIGIN other.\nw CNAME rpz-drop.\n";
        let got: Vec<Result<(usize, String), usize>> = Reader::new(text.as_bytes(), &origin)
            .map(|e| {
                e.map(|e| (e.line, e.record.owner.to_string()))
                    .map_err(|e| e.line)
            })
            .collect();
        assert_eq!(
            got,
            [
                Err(2),
                Ok((3, "y.rpz.test.".to_owned())),
                Ok((4, "y.rpz.test.".to_owned())),
                Err(5),
                Ok((7, "w.other.".to_owned())),
            ]
        );
    }
}
