//! Zone transfers as the primary sends them: who may transfer (a valid
//! TSIG, or an unsigned request from the allow list), AXFR from a snapshot
//! read in batches, IXFR as one condensed diff (RFC 1995 §4) or the whole
//! zone when the chain of diffs is broken, and [`Transfer`], which builds
//! and signs each message only when the connection is ready for it (so a
//! national list never sits in memory whole).

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use tracing::warn;

use super::answer::Ctx;
use super::{EDNS_UDP_SIZE, Observed, Primary, Reply, TRAILER_RESERVE, Transport, ZoneData};
use crate::serial::serial_lt;
use crate::source::{Diff, Record, Snapshot, ZoneSource};
use crate::tsig::{Signer, TsigKey, unix_now};
use crate::wire::{
    Message, MessageBuilder, Name, Question, Rcode, Rdata, Section, Soa, class, rtype,
};
use crate::zonemd::ZoneDigest;

impl<S: ZoneSource> Primary<S> {
    fn transfer_allowed(&self, ctx: &Ctx, peer: SocketAddr, kind: &str) -> bool {
        if ctx.signer.is_some() {
            return true;
        }
        if self.allow_listed(peer.ip()) {
            return true;
        }
        if let Some(held) = self.quiet("transfer-refused") {
            warn!(%peer, kind, held, "unsigned transfer request from an address not allowed; refused");
        }
        false
    }

    fn transfer(
        &self,
        ctx: Ctx,
        kind: &'static str,
        from: Option<u32>,
        serial: u32,
        parts: Vec<Part>,
    ) -> Transfer {
        let q = ctx.question.clone().unwrap_or(Question {
            name: self.inner.zone.name.clone(),
            qtype: rtype::AXFR,
            qclass: class::IN,
        });
        Transfer {
            zone: self.inner.zone.clone(),
            id: ctx.header.id,
            flags: ctx.header.response_flags(Rcode::NOERROR, true),
            question: q,
            edns: ctx.edns.is_some(),
            signer: ctx.signer,
            parts,
            part: 0,
            index: 0,
            budget: self.inner.config.transfer_message_size - TRAILER_RESERVE,
            kind,
            from,
            serial,
            messages: 0,
            records: 0,
            skipped: 0,
            failed: None,
        }
    }

    pub(super) async fn axfr(&self, ctx: Ctx, peer: SocketAddr) -> Reply {
        if ctx.transport == Transport::Udp {
            return ctx.simple(Rcode::FORMERR);
        }
        if !self.transfer_allowed(&ctx, peer, "AXFR") {
            return ctx.simple(Rcode::REFUSED);
        }
        self.full_transfer(ctx, "AXFR", None).await
    }

    /// The whole zone: SOA, NS, ZONEMD, the records, SOA. The digest is
    /// taken (or computed) for the serial about to be sent; if the zone
    /// moves on between the two, both are taken again (a few times, then
    /// the zone goes without its ZONEMD rather than with a wrong one).
    async fn full_transfer(&self, ctx: Ctx, kind: &'static str, from: Option<u32>) -> Reply {
        let mut tries = 0;
        loop {
            tries += 1;
            let digest = match self.serial().await {
                Some(s) => self.zone_digest(s).await,
                None => None,
            };
            let Snapshot { serial, records } = match self.inner.source.snapshot().await {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "zone source failed (snapshot)");
                    return ctx.simple(Rcode::SERVFAIL);
                }
            };
            let digest = digest.filter(|d| d.serial == serial);
            if digest.is_none() && tries < 3 {
                continue;
            }
            if digest.is_none() {
                warn!(
                    serial,
                    "zone sent without its ZONEMD: the serial kept moving"
                );
            }
            let mut parts = vec![Part::Soa(serial), Part::Ns];
            parts.extend(digest.map(Part::Zonemd));
            parts.push(Part::Records(Vec::new(), Some(records)));
            parts.push(Part::Soa(serial));
            return Reply::Transfer(Box::new(self.transfer(ctx, kind, from, serial, parts)));
        }
    }

    pub(super) async fn ixfr(&self, mut ctx: Ctx, msg: &Message<'_>, peer: SocketAddr) -> Reply {
        let zone = &self.inner.zone;
        let client = msg
            .authority
            .iter()
            .find(|r| r.rtype == rtype::SOA && r.name.eq_ignore_case(&zone.name))
            .and_then(|r| Soa::parse(msg.bytes, r.rdata.clone()).ok());
        let Some(client) = client else {
            return ctx.simple(Rcode::FORMERR);
        };
        if !self.transfer_allowed(&ctx, peer, "IXFR") {
            return ctx.simple(Rcode::REFUSED);
        }
        let Some(current) = self.serial().await else {
            return ctx.simple(Rcode::SERVFAIL);
        };
        if ctx.transport == Transport::Udp || !serial_lt(client.serial, current) {
            // Up to date (or newer), or UDP: the current SOA alone. Either
            // way the secondary told us the serial it holds.
            let key = ctx.key_name();
            self.emit(
                peer.ip(),
                key,
                ctx.transport,
                Observed::Transfer {
                    kind: "IXFR",
                    from: Some(client.serial),
                    serial: current,
                    complete: client.serial == current,
                },
            );
            let mut b = ctx.builder(Rcode::NOERROR, true);
            zone.put_soa(&mut b, Section::Answer, current);
            return Reply::Message(ctx.finish(b, Rcode::NOERROR));
        }
        let diffs = match self.inner.source.changes_since(client.serial).await {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "zone source failed (changes)");
                return ctx.simple(Rcode::SERVFAIL);
            }
        };
        match diffs.map(|d| condense(client.serial, d)) {
            Some(Ok(None)) => {
                let mut b = ctx.builder(Rcode::NOERROR, true);
                zone.put_soa(&mut b, Section::Answer, current);
                Reply::Message(ctx.finish(b, Rcode::NOERROR))
            }
            Some(Ok(Some((to, removed, added)))) => {
                // the ZONEMD changes with every serial: the one the
                // secondary holds goes, the new one comes. A secondary
                // holding a serial whose digest is not known never got a
                // ZONEMD for it from here (every transfer's digest is
                // kept), so there is none to remove.
                let Some(new) = self.zone_digest(to).await else {
                    return self
                        .full_transfer(ctx, "IXFR(AXFR)", Some(client.serial))
                        .await;
                };
                let old = self.known_digest(client.serial).await;
                let mut parts = vec![Part::Soa(to), Part::Soa(client.serial)];
                parts.extend(old.map(Part::Zonemd));
                parts.push(Part::Records(removed, None));
                parts.push(Part::Soa(to));
                parts.push(Part::Zonemd(new));
                parts.push(Part::Records(added, None));
                parts.push(Part::Soa(to));
                Reply::Transfer(Box::new(self.transfer(
                    ctx,
                    "IXFR",
                    Some(client.serial),
                    to,
                    parts,
                )))
            }
            Some(Err(e)) => {
                warn!(error = %e, "zone source gave a broken chain of diffs; sending the whole zone");
                self.full_transfer(ctx, "IXFR(AXFR)", Some(client.serial))
                    .await
            }
            None => {
                self.full_transfer(ctx, "IXFR(AXFR)", Some(client.serial))
                    .await
            }
        }
    }
}

type Records = Vec<Record>;

/// Folds a chain of diffs starting at `from` into one: `None` if it is
/// empty, else (last serial, removed, added). A chain that does not start
/// at `from` or has a gap is an error.
fn condense(from: u32, diffs: Vec<Diff>) -> Result<Option<(u32, Records, Records)>, String> {
    if diffs.is_empty() {
        return Ok(None);
    }
    let mut at = from;
    let mut removed = BTreeSet::new();
    let mut added = BTreeSet::new();
    for d in diffs {
        if d.from != at {
            return Err(format!(
                "a diff starts at {} where {at} was expected",
                d.from
            ));
        }
        at = d.to;
        for r in d.removed {
            if !added.remove(&r) {
                removed.insert(r);
            }
        }
        for a in d.added {
            if !removed.remove(&a) {
                added.insert(a);
            }
        }
    }
    Ok(Some((
        at,
        removed.into_iter().collect(),
        added.into_iter().collect(),
    )))
}

#[derive(Debug)]
enum Part {
    Soa(u32),
    Ns,
    /// The apex ZONEMD of a serial.
    Zonemd(ZoneDigest),
    /// Records, and where more come from (a snapshot's later batches).
    Records(
        Records,
        Option<tokio::sync::mpsc::Receiver<Result<Records, String>>>,
    ),
}

/// A zone transfer being sent: each call to [`Transfer::next_message`]
/// builds (and signs) the next message.
pub struct Transfer {
    zone: Arc<ZoneData>,
    id: u16,
    flags: u16,
    question: Question,
    edns: bool,
    signer: Option<Signer>,
    parts: Vec<Part>,
    part: usize,
    index: usize,
    budget: usize,
    /// AXFR, IXFR or IXFR(AXFR) (an IXFR answered with the whole zone).
    pub kind: &'static str,
    /// The serial the secondary said it held (IXFR).
    pub from: Option<u32>,
    /// The serial being sent.
    pub serial: u32,
    /// Messages built so far.
    pub messages: usize,
    /// Records sent so far.
    pub records: usize,
    /// Records left out because their owner is not a valid name.
    pub skipped: usize,
    /// Why the transfer stopped early (the zone source failed mid-way).
    pub failed: Option<String>,
}

impl fmt::Debug for Transfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transfer")
            .field("kind", &self.kind)
            .field("serial", &self.serial)
            .field("messages", &self.messages)
            .finish()
    }
}

/// A key's name as text, without the trailing dot.
pub(super) fn key_text(key: &TsigKey) -> String {
    key.name().to_string().trim_end_matches('.').to_string()
}

impl Transfer {
    /// The TSIG key the transfer is signed with.
    pub fn key_name(&self) -> Option<String> {
        self.signer.as_ref().map(|s| key_text(s.key()))
    }

    /// This transfer as an observation.
    pub fn observed(&self, complete: bool) -> Observed {
        Observed::Transfer {
            kind: self.kind,
            from: self.from,
            serial: self.serial,
            complete,
        }
    }

    /// The next message of the transfer, or `None` at the end (or when
    /// the zone source failed: see [`Transfer::failed`]).
    pub async fn next_message(&mut self) -> Option<Vec<u8>> {
        if self.part >= self.parts.len() || self.failed.is_some() {
            return None;
        }
        let zone = self.zone.clone();
        let mut b = MessageBuilder::new(self.id, self.flags);
        if self.messages == 0 {
            b.question(&self.question);
        }
        let mut wrote = 0usize;
        // SOA with uncompressed names: an upper bound on its size.
        let soa_max =
            zone.name.wire().len() + 10 + zone.mname.wire().len() + zone.rname.wire().len() + 20;
        while self.part < self.parts.len() {
            let at_index = self.index;
            match &mut self.parts[self.part] {
                Part::Soa(serial) => {
                    if wrote > 0 && b.len() + soa_max > self.budget {
                        break;
                    }
                    zone.put_soa(&mut b, Section::Answer, *serial);
                    self.part += 1;
                    wrote += 1;
                }
                Part::Ns => {
                    if wrote > 0 && b.len() + soa_max > self.budget {
                        break;
                    }
                    zone.put_ns(&mut b);
                    self.part += 1;
                    wrote += 1;
                }
                Part::Zonemd(d) => {
                    if wrote > 0 && b.len() + zone.name.wire().len() + 10 + 54 > self.budget {
                        break;
                    }
                    b.record(
                        Section::Answer,
                        &zone.name,
                        rtype::ZONEMD,
                        class::IN,
                        zone.ttl,
                        Rdata::Raw(&d.rdata()),
                    );
                    self.part += 1;
                    wrote += 1;
                }
                Part::Records(records, more) => {
                    let Some(r) = records.get(at_index) else {
                        // this batch is done: the next one, or the next part
                        let next = match more {
                            Some(rx) => rx.recv().await,
                            None => None,
                        };
                        match next {
                            Some(Ok(batch)) => *records = batch,
                            Some(Err(e)) => {
                                self.failed = Some(e);
                                return None;
                            }
                            None => {
                                records.clear();
                                self.part += 1;
                            }
                        }
                        self.index = 0;
                        continue;
                    };
                    // never a trigger, whatever the source holds
                    let checked = crate::check_owner_wire(&r.owner, zone.name.wire().len())
                        .and_then(|()| {
                            Name::relative_to(&r.owner, &zone.name).map_err(|e| e.to_string())
                        });
                    let name = match checked {
                        Ok(n) => n,
                        Err(e) => {
                            warn!(owner = %r.owner.escape_debug(), error = %e, "record left out of the transfer");
                            self.skipped += 1;
                            self.index += 1;
                            continue;
                        }
                    };
                    let target = zone.target(r.action);
                    // the explanation (a TXT under _tapis) goes with its record
                    let txt = r.explanation.as_deref().and_then(|t| {
                        Some((
                            Name::relative_to(&r.owner, &zone.explain).ok()?,
                            crate::zonemd::txt_rdata(t),
                        ))
                    });
                    let need = name.wire().len()
                        + 10
                        + target.wire().len()
                        + txt
                            .as_ref()
                            .map_or(0, |(n, d)| n.wire().len() + 10 + d.len());
                    if wrote > 0 && b.len() + need > self.budget {
                        break;
                    }
                    b.record(
                        Section::Answer,
                        &name,
                        rtype::CNAME,
                        class::IN,
                        zone.ttl,
                        Rdata::Cname(target),
                    );
                    wrote += 1;
                    if let Some((n, d)) = &txt {
                        b.record(
                            Section::Answer,
                            n,
                            rtype::TXT,
                            class::IN,
                            zone.ttl,
                            Rdata::Raw(d),
                        );
                        wrote += 1;
                    }
                    self.index += 1;
                }
            }
        }
        if wrote == 0 && self.messages > 0 {
            return None;
        }
        self.records += wrote;
        self.messages += 1;
        if self.edns {
            b.opt(EDNS_UDP_SIZE, Rcode::NOERROR);
        }
        let mut m = b.finish();
        if let Some(s) = &mut self.signer {
            s.sign(&mut m, unix_now());
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_condense() {
        use tapis_core::order::OrderAction::*;
        let r = |o: &str, a| Record::new(o, a);
        let diffs = vec![
            Diff {
                from: 1,
                to: 2,
                removed: vec![r("a", Nxdomain)],
                added: vec![r("b", Nxdomain), r("c", Drop)],
            },
            Diff {
                from: 2,
                to: 3,
                removed: vec![r("b", Nxdomain)],
                added: vec![r("a", Nxdomain), r("d", Passthru)],
            },
        ];
        let (to, removed, added) = condense(1, diffs.clone())
            .expect("chain")
            .expect("non-empty");
        assert_eq!(to, 3);
        assert!(removed.is_empty());
        assert_eq!(added, vec![r("c", Drop), r("d", Passthru)]);
        assert!(condense(2, diffs).is_err());
        assert_eq!(condense(2, vec![]), Ok(None));
    }
}
