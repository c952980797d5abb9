//! The RPZ policy engine (draft-vixie-dnsop-dns-rpz), QNAME triggers only.
//!
//! A [`PolicyZone`] turns zone records into triggers: an owner `T.<zone>`
//! is an exact trigger on `T`, `*.T.<zone>` a wildcard trigger on names
//! strictly below `T`. The action comes from the record: `CNAME .`
//! NXDOMAIN, `CNAME *.` NODATA, `CNAME rpz-passthru.` PASSTHRU,
//! `CNAME rpz-drop.` DROP, `CNAME rpz-tcp-only.` TCP-only, and anything
//! else (a CNAME to a walled garden, A, AAAA, TXT, …) local data.
//!
//! Within a zone an exact trigger beats a wildcard, and among wildcards the
//! longest wins; across zones the first zone (in configured order) with any
//! match wins, PASSTHRU included. The `_tapis` subtree (`T._tapis.<zone>
//! TXT "ref=… cat=…"`) is metadata for trigger `T`, never a trigger itself.
//! Triggers of other kinds (`rpz-ip`, `rpz-nsdname`, `rpz-client-ip`,
//! `rpz-nsip`) are counted and ignored.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use tapis_dns::name::{from_wire as name_from_wire, labels, parents, skip_name};
use tapis_dns::rpz::CnamePolicy;
use tapis_dns::wire::{Name, rtype};
pub use tapis_dns::zonefile::ZoneRecord;

use crate::Error;
use crate::table::Table;

/// A policy action. The numbers are what the table stores (0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Action {
    Nxdomain = 1,
    Nodata = 2,
    Passthru = 3,
    Drop = 4,
    TcpOnly = 5,
    /// Local data at the trigger, including a CNAME to a walled garden.
    Local = 6,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Nxdomain,
        Action::Nodata,
        Action::Passthru,
        Action::Drop,
        Action::TcpOnly,
        Action::Local,
    ];

    fn from_u8(v: u8) -> Option<Action> {
        Action::ALL.get(usize::from(v).checked_sub(1)?).copied()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Nxdomain => "nxdomain",
            Action::Nodata => "nodata",
            Action::Passthru => "passthru",
            Action::Drop => "drop",
            Action::TcpOnly => "tcp-only",
            Action::Local => "local-data",
        }
    }

    pub fn index(self) -> usize {
        self as usize - 1
    }

    /// The CNAME policy that selects this action.
    pub fn policy(self) -> CnamePolicy {
        match self {
            Action::Nxdomain => CnamePolicy::Nxdomain,
            Action::Nodata => CnamePolicy::Nodata,
            Action::Passthru => CnamePolicy::Passthru,
            Action::Drop => CnamePolicy::Drop,
            Action::TcpOnly => CnamePolicy::TcpOnly,
            Action::Local => CnamePolicy::Local,
        }
    }
}

impl From<CnamePolicy> for Action {
    fn from(p: CnamePolicy) -> Action {
        match p {
            CnamePolicy::Nxdomain => Action::Nxdomain,
            CnamePolicy::Nodata => Action::Nodata,
            CnamePolicy::Passthru => Action::Passthru,
            CnamePolicy::Drop => Action::Drop,
            CnamePolicy::TcpOnly => Action::TcpOnly,
            CnamePolicy::Local => Action::Local,
        }
    }
}

/// The EDE category a `_tapis` record names (RFC 8914 info codes): the
/// toolkit's kind of block, read by its explanation reader.
pub use tapis_dns::BlockKind as Category;

/// An order reference and category, shared by every trigger that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub reference: Box<str>,
    pub category: Category,
}

/// The zone's SOA, kept as wire data for negative answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSoa {
    pub ttl: u32,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
    /// Uncompressed SOA record data.
    pub rdata: Vec<u8>,
}

impl ZoneSoa {
    pub fn from_rdata(ttl: u32, rdata: &[u8]) -> Option<ZoneSoa> {
        let mut p = 0;
        for _ in 0..2 {
            p = skip_name(rdata, p)?;
        }
        let t = rdata.get(p..p + 20)?;
        if p + 20 != rdata.len() {
            return None;
        }
        let u = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
        Some(ZoneSoa {
            ttl,
            serial: u(0),
            refresh: u(4),
            retry: u(8),
            expire: u(12),
            minimum: u(16),
            rdata: rdata.to_vec(),
        })
    }
}

/// Local data at one trigger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalData {
    /// (type, TTL, uncompressed record data)
    pub records: Vec<(u16, u32, Box<[u8]>)>,
}

/// One policy zone's triggers.
pub struct PolicyZone {
    origin: Name,
    soa: Option<ZoneSoa>,
    table: Table,
    /// Local data keyed by entry offset × 2 + (1 for the wildcard side).
    local: HashMap<u64, LocalData>,
    refs: Vec<Reference>,
    ref_index: HashMap<(Box<str>, u8), u32>,
    /// Records of trigger kinds this engine does not implement.
    pub unsupported: u64,
}

/// A match: which trigger side and its data.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub action: Action,
    pub reference: u32,
    offset: u32,
    wild: bool,
}

impl PolicyZone {
    pub fn new(origin: &Name) -> PolicyZone {
        PolicyZone {
            origin: origin.to_lowercase(),
            soa: None,
            table: Table::default(),
            local: HashMap::new(),
            refs: Vec::new(),
            ref_index: HashMap::new(),
            unsupported: 0,
        }
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    pub fn soa(&self) -> Option<&ZoneSoa> {
        self.soa.as_ref()
    }

    pub fn serial(&self) -> Option<u32> {
        self.soa.as_ref().map(|s| s.serial)
    }

    /// Live triggers (names with at least an exact or wildcard action).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Approximate heap bytes (table, local data, references).
    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
            + self.local.capacity() * 48
            + self
                .refs
                .iter()
                .map(|r| r.reference.len() + 24)
                .sum::<usize>()
    }

    /// Bytes left behind by removed entries (a full reload reclaims them).
    pub fn garbage(&self) -> usize {
        self.table.garbage()
    }

    pub fn reference(&self, index: u32) -> Option<&Reference> {
        self.refs.get(usize::try_from(index).ok()?.checked_sub(1)?)
    }

    pub fn local_data(&self, hit: &Hit) -> Option<&LocalData> {
        self.local
            .get(&(u64::from(hit.offset) * 2 + u64::from(hit.wild)))
    }

    /// The policy for a query name given as lowercase uncompressed wire.
    #[inline]
    pub fn lookup(&self, qname: &[u8]) -> Option<Hit> {
        if let Some((offset, d)) = self.table.get(qname)
            && let Some(action) = Action::from_u8(d.exact)
        {
            return Some(Hit {
                action,
                reference: d.exact_ref,
                offset,
                wild: false,
            });
        }
        // Wildcards from the longest suffix (the parent) to the root.
        for suffix in parents(qname) {
            if let Some((offset, d)) = self.table.get(suffix)
                && let Some(action) = Action::from_u8(d.wild)
            {
                return Some(Hit {
                    action,
                    reference: d.wild_ref,
                    offset,
                    wild: true,
                });
            }
        }
        None
    }

    /// A record's owner in lower case and the length of its part below
    /// the origin (0 at the apex); an error outside the zone.
    fn relative(&self, rec: &ZoneRecord) -> Result<(Name, usize), Error> {
        let owner = rec.owner.to_lowercase();
        if !owner.ends_with(&self.origin) {
            return Err(Error::Policy(format!(
                "record {} is not in the policy zone {}",
                rec.owner, self.origin
            )));
        }
        let rel_len = owner.wire().len() - self.origin.wire().len();
        Ok((owner, rel_len))
    }

    fn read_soa(&self, rec: &ZoneRecord) -> Result<ZoneSoa, Error> {
        ZoneSoa::from_rdata(rec.ttl, &rec.rdata)
            .ok_or_else(|| Error::Policy(format!("unreadable SOA for {}", self.origin)))
    }

    /// Adds (`add`) or deletes one record, as an AXFR or IXFR carries it.
    pub fn apply(&mut self, rec: &ZoneRecord, add: bool) -> Result<(), Error> {
        let (owner, rel_len) = self.relative(rec)?;
        let rel = &owner.wire()[..rel_len];
        if rel.is_empty() {
            if rec.rtype == rtype::SOA && add {
                self.soa = Some(self.read_soa(rec)?);
            }
            return Ok(());
        }
        let labels: Vec<&[u8]> = labels(rel).collect();
        let last = labels.last().copied().unwrap_or(&[]);
        if last.eq_ignore_ascii_case(b"_tapis") {
            if rec.rtype == rtype::TXT {
                let trigger = &rel[..rel.len() - 1 - last.len()];
                self.apply_meta(trigger, &rec.rdata, add)?;
            }
            return Ok(());
        }
        if last.starts_with(b"rpz-") {
            if add {
                self.unsupported += 1;
            }
            return Ok(());
        }
        let (wild, key_rel) = match labels.first() {
            Some(&b"*") => (true, &rel[2..]),
            _ => (false, rel),
        };
        let mut key = Vec::with_capacity(key_rel.len() + 1);
        key.extend_from_slice(key_rel);
        key.push(0);
        let special = special_action(rec);
        match special {
            Some(action) => {
                let (off, removed) = self.table.update(&key, |d| {
                    let slot = if wild { &mut d.wild } else { &mut d.exact };
                    if add {
                        *slot = action as u8;
                    } else if *slot == action as u8 {
                        *slot = 0;
                    }
                })?;
                // A special action replaces local data at the same trigger.
                if add && !removed {
                    self.local.remove(&(u64::from(off) * 2 + u64::from(wild)));
                } else if removed {
                    self.drop_local(off);
                }
            }
            None => {
                if add {
                    let (off, _) = self.table.update(&key, |d| {
                        let slot = if wild { &mut d.wild } else { &mut d.exact };
                        *slot = Action::Local as u8;
                    })?;
                    let data = self
                        .local
                        .entry(u64::from(off) * 2 + u64::from(wild))
                        .or_default();
                    let rd: Box<[u8]> = rec.rdata.clone().into_boxed_slice();
                    if !data
                        .records
                        .iter()
                        .any(|(t, _, d)| *t == rec.rtype && *d == rd)
                    {
                        data.records.push((rec.rtype, rec.ttl, rd));
                    }
                } else {
                    let Some((off, d)) = self.table.get(&key) else {
                        return Ok(());
                    };
                    let k = u64::from(off) * 2 + u64::from(wild);
                    let now_empty = match self.local.get_mut(&k) {
                        Some(data) => {
                            data.records
                                .retain(|(t, _, d)| !(*t == rec.rtype && **d == rec.rdata[..]));
                            data.records.is_empty()
                        }
                        None => false,
                    };
                    let side_action = if wild { d.wild } else { d.exact };
                    if now_empty && side_action == Action::Local as u8 {
                        self.local.remove(&k);
                        let (off, removed) = self.table.update(&key, |d| {
                            let slot = if wild { &mut d.wild } else { &mut d.exact };
                            *slot = 0;
                        })?;
                        if removed {
                            self.drop_local(off);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Starts a full reload done as a diff against this version: feed the
    /// new version's records to [`PolicyZone::reload_record`] (read-only),
    /// then apply [`PolicyZone::reload_plan`] and the collected additions
    /// with [`PolicyZone::reload_apply`]. Memory beyond this zone is one
    /// byte per hash slot plus what changed, instead of a second copy. When
    /// more than a fifth changed, `overflowed()` says so and the caller
    /// builds the new version aside instead.
    pub fn reload_begin(&self) -> Reload {
        Reload {
            seen: vec![0; self.table.slot_count()],
            adds: Vec::new(),
            soa: None,
            max_adds: (self.len() / 5).max(10_000),
            overflow: false,
        }
    }

    /// Notes one record of the new version: present here (marked seen) or
    /// to add.
    pub fn reload_record(&self, r: &mut Reload, rec: &ZoneRecord) -> Result<(), Error> {
        let (owner, rel_len) = self.relative(rec)?;
        let rel = &owner.wire()[..rel_len];
        if rel.is_empty() {
            if rec.rtype == rtype::SOA {
                r.soa = Some(self.read_soa(rec)?);
            }
            return Ok(());
        }
        let labels: Vec<&[u8]> = labels(rel).collect();
        let last = labels.last().copied().unwrap_or(&[]);
        let push = |r: &mut Reload| {
            if r.adds.len() >= r.max_adds {
                r.overflow = true;
            } else {
                r.adds.push(rec.clone());
            }
        };
        if last.eq_ignore_ascii_case(b"_tapis") {
            if rec.rtype != rtype::TXT {
                return Ok(());
            }
            let trigger = &rel[..rel.len() - 1 - last.len()];
            let (wild, key_rel) = if trigger.starts_with(b"\x01*") {
                (true, &trigger[2..])
            } else {
                (false, trigger)
            };
            let mut key = key_rel.to_vec();
            key.push(0);
            let want = parse_meta(&rec.rdata);
            if let Some(slot) = self.table.slot_of(&key)
                && let Some((_, d)) = self.table.get(&key)
            {
                let have = self.reference(if wild { d.wild_ref } else { d.exact_ref });
                if want.is_some() && have == want.as_ref() {
                    r.seen[slot] |= if wild { 8 } else { 4 };
                    return Ok(());
                }
            }
            push(r);
            return Ok(());
        }
        if last.starts_with(b"rpz-") {
            return Ok(());
        }
        let (wild, key_rel) = match labels.first() {
            Some(&b"*") => (true, &rel[2..]),
            _ => (false, rel),
        };
        let mut key = key_rel.to_vec();
        key.push(0);
        let special = special_action(rec);
        if let Some(action) = special
            && let Some(slot) = self.table.slot_of(&key)
            && let Some((_, d)) = self.table.get(&key)
            && (if wild { d.wild } else { d.exact }) == action as u8
        {
            r.seen[slot] |= if wild { 2 } else { 1 };
            return Ok(());
        }
        // local data is always re-added (and cleared first): it is rare
        push(r);
        Ok(())
    }

    /// What to clear: every part of this version the new one did not
    /// repeat (key, mask: 1 exact, 2 wildcard, 4 exact ref, 8 wildcard ref).
    pub fn reload_plan(&self, r: &Reload) -> ReloadPlan {
        let mut plan = Vec::new();
        for (slot, key, d) in self.table.slots_iter() {
            let seen = r.seen.get(slot).copied().unwrap_or(0);
            let mut mask = 0u8;
            if d.exact != 0 && (d.exact == Action::Local as u8 || seen & 1 == 0) {
                mask |= 1;
            }
            if d.wild != 0 && (d.wild == Action::Local as u8 || seen & 2 == 0) {
                mask |= 2;
            }
            if d.exact_ref != 0 && seen & 4 == 0 {
                mask |= 4;
            }
            if d.wild_ref != 0 && seen & 8 == 0 {
                mask |= 8;
            }
            if mask != 0 {
                plan.push((key.to_vec(), mask));
            }
        }
        plan
    }

    /// Applies a reload's plan and additions (under the zone's write lock).
    pub fn reload_apply(&mut self, plan: ReloadPlan, r: Reload) -> Result<(), Error> {
        for (key, mask) in plan {
            let Some((off, _)) = self.table.get(&key) else {
                continue;
            };
            if mask & 1 != 0 {
                self.local.remove(&(u64::from(off) * 2));
            }
            if mask & 2 != 0 {
                self.local.remove(&(u64::from(off) * 2 + 1));
            }
            let (off, removed) = self.table.update(&key, |d| {
                if mask & 1 != 0 {
                    d.exact = 0;
                }
                if mask & 2 != 0 {
                    d.wild = 0;
                }
                if mask & 4 != 0 {
                    d.exact_ref = 0;
                }
                if mask & 8 != 0 {
                    d.wild_ref = 0;
                }
            })?;
            if removed {
                self.drop_local(off);
            }
        }
        for rec in &r.adds {
            self.apply(rec, true)?;
        }
        self.soa = r.soa;
        Ok(())
    }

    fn drop_local(&mut self, off: u32) {
        self.local.remove(&(u64::from(off) * 2));
        self.local.remove(&(u64::from(off) * 2 + 1));
    }

    fn apply_meta(&mut self, trigger: &[u8], txt: &[u8], add: bool) -> Result<(), Error> {
        let (wild, key_rel) = if trigger.starts_with(b"\x01*") {
            (true, &trigger[2..])
        } else {
            (false, trigger)
        };
        let mut key = Vec::with_capacity(key_rel.len() + 1);
        key.extend_from_slice(key_rel);
        key.push(0);
        let index = if add {
            match parse_meta(txt) {
                Some(r) => self.intern(r),
                None => return Ok(()),
            }
        } else {
            0
        };
        let (off, removed) = self.table.update(&key, |d| {
            if wild {
                d.wild_ref = index;
            } else {
                d.exact_ref = index;
            }
        })?;
        if removed {
            self.drop_local(off);
        }
        Ok(())
    }

    fn intern(&mut self, r: Reference) -> u32 {
        let k = (r.reference.clone(), r.category as u8);
        if let Some(&i) = self.ref_index.get(&k) {
            return i;
        }
        self.refs.push(r);
        let i = self.refs.len() as u32;
        self.ref_index.insert(k, i);
        i
    }

    /// Every record this zone would need to be rebuilt (SOA first), for the
    /// local snapshot.
    pub fn for_each_record(&self, mut out: impl FnMut(ZoneRecord)) {
        let ttl = self.soa.as_ref().map_or(300, |s| s.minimum);
        if let Some(soa) = &self.soa {
            out(ZoneRecord {
                owner: self.origin.clone(),
                rtype: rtype::SOA,
                class: 1,
                ttl: soa.ttl,
                rdata: soa.rdata.clone(),
            });
        }
        for (off, key, d) in self.table.iter() {
            let rel = &key[..key.len() - 1];
            for (wild, action, reference) in
                [(false, d.exact, d.exact_ref), (true, d.wild, d.wild_ref)]
            {
                let mut owner = Vec::with_capacity(key.len() + 2 + self.origin.wire().len());
                if wild {
                    owner.extend_from_slice(b"\x01*");
                }
                owner.extend_from_slice(rel);
                let trigger_len = owner.len();
                owner.extend_from_slice(self.origin.wire());
                let Some(owner_name) = name_from_wire(&owner) else {
                    continue;
                };
                let target = Action::from_u8(action).and_then(|a| a.policy().target());
                if let Some(t) = target {
                    out(ZoneRecord {
                        owner: owner_name.clone(),
                        rtype: rtype::CNAME,
                        class: 1,
                        ttl,
                        rdata: t.to_vec(),
                    });
                } else if action == Action::Local as u8
                    && let Some(data) = self.local.get(&(u64::from(off) * 2 + u64::from(wild)))
                {
                    for (t, ttl, rd) in &data.records {
                        out(ZoneRecord {
                            owner: owner_name.clone(),
                            rtype: *t,
                            class: 1,
                            ttl: *ttl,
                            rdata: rd.to_vec(),
                        });
                    }
                }
                if let Some(r) = self.reference(reference) {
                    let mut meta = owner[..trigger_len].to_vec();
                    meta.extend_from_slice(b"\x06_tapis");
                    meta.extend_from_slice(self.origin.wire());
                    let text = format!("ref={} cat={}", r.reference, r.category.as_str());
                    if let (Some(meta), Ok(len)) = (name_from_wire(&meta), u8::try_from(text.len()))
                    {
                        let mut rd = vec![len];
                        rd.extend_from_slice(text.as_bytes());
                        out(ZoneRecord {
                            owner: meta,
                            rtype: rtype::TXT,
                            class: 1,
                            ttl,
                            rdata: rd,
                        });
                    }
                }
            }
        }
    }
}

/// The action a CNAME names by its target, if it is one of the specials.
fn special_action(rec: &ZoneRecord) -> Option<Action> {
    if rec.rtype != rtype::CNAME {
        return None;
    }
    match Action::from(CnamePolicy::of_target(&rec.rdata)) {
        Action::Local => None,
        special => Some(special),
    }
}

/// What a reload clears: (key, mask) — see [`PolicyZone::reload_plan`].
pub type ReloadPlan = Vec<(Vec<u8>, u8)>;

/// A reload in progress (see [`PolicyZone::reload_begin`]).
pub struct Reload {
    seen: Vec<u8>,
    adds: Vec<ZoneRecord>,
    soa: Option<ZoneSoa>,
    max_adds: usize,
    overflow: bool,
}

impl Reload {
    /// Too much changed for an in-place reload.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    pub fn changes(&self) -> usize {
        self.adds.len()
    }
}

/// `ref=<reference> cat=<blocked|censored|filtered>` from TXT record data
/// (its character-strings joined), read as tapis-dns reads explanations.
fn parse_meta(txt: &[u8]) -> Option<Reference> {
    let mut text = String::new();
    let mut p = 0;
    while let Some(&l) = txt.get(p) {
        let s = txt.get(p + 1..p + 1 + usize::from(l))?;
        text.push_str(std::str::from_utf8(s).ok()?);
        p += 1 + usize::from(l);
    }
    let (reference, category) = tapis_dns::parse_explanation(&text)?;
    Some(Reference {
        reference: reference.into(),
        category,
    })
}

/// All policy zones in configured order; each can be updated in place (an
/// IXFR, under a brief write lock) or replaced whole (a new zone built
/// aside, then swapped).
pub struct Policies {
    zones: Vec<ZoneSlot>,
}

pub struct ZoneSlot {
    pub name: String,
    zone: RwLock<Arc<PolicyZone>>,
}

/// A match across zones.
pub struct Verdict<'a> {
    pub zone_index: usize,
    pub zone: &'a PolicyZone,
    pub hit: Hit,
}

impl Policies {
    pub fn new(zones: impl IntoIterator<Item = (String, Name)>) -> Policies {
        Policies {
            zones: zones
                .into_iter()
                .map(|(name, origin)| ZoneSlot {
                    name,
                    zone: RwLock::new(Arc::new(PolicyZone::new(&origin))),
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    pub fn name(&self, index: usize) -> &str {
        self.zones.get(index).map_or("", |z| z.name.as_str())
    }

    /// Runs `f` on the verdict for `qname` (lowercase wire) with every
    /// zone read-locked, so an answer can be built without copying.
    #[inline]
    pub fn check<R>(&self, qname: &[u8], f: impl FnOnce(Option<Verdict<'_>>) -> R) -> R {
        for (zone_index, slot) in self.zones.iter().enumerate() {
            let zone = slot.zone.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(hit) = zone.lookup(qname) {
                return f(Some(Verdict {
                    zone_index,
                    zone: &zone,
                    hit,
                }));
            }
        }
        f(None)
    }

    /// The current zone at `index` (a cheap shared handle).
    pub fn zone(&self, index: usize) -> Option<Arc<PolicyZone>> {
        let slot = self.zones.get(index)?;
        Some(
            slot.zone
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }

    /// Replaces a zone with one built aside.
    pub fn replace(&self, index: usize, zone: PolicyZone) {
        if let Some(slot) = self.zones.get(index) {
            let old = {
                let mut w = slot.zone.write().unwrap_or_else(PoisonError::into_inner);
                std::mem::replace(&mut *w, Arc::new(zone))
            };
            drop(old);
        }
    }

    /// Changes a zone in place under its write lock (an IXFR's diff). If a
    /// reader still holds the old handle (a snapshot being written), the
    /// zone is copied first.
    pub fn update<R>(&self, index: usize, f: impl FnOnce(&mut PolicyZone) -> R) -> Option<R> {
        let slot = self.zones.get(index)?;
        let mut w = slot.zone.write().unwrap_or_else(PoisonError::into_inner);
        match Arc::get_mut(&mut w) {
            Some(z) => Some(f(z)),
            None => {
                // Shared (a snapshot writer holds it): rebuild from records.
                let mut copy = PolicyZone::new(w.origin());
                w.for_each_record(|r| {
                    let _ = copy.apply(&r, true);
                });
                let out = f(&mut copy);
                *w = Arc::new(copy);
                Some(out)
            }
        }
    }
}
