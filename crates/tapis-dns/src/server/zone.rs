//! The zone as the primary writes it: its names parsed once (apex, SOA
//! names, the five RPZ targets, the `_tapis` explanation subtree) and the
//! one place its SOA record is built, for answers, negative answers,
//! NOTIFY and the frames of every transfer.

use tapis_core::order::OrderAction;

use crate::wire::{MessageBuilder, Name, Rdata, Section, Soa, class, rtype};
use crate::{Error, ZoneConfig};

/// The zone's fixed names, parsed once.
#[derive(Debug)]
pub(crate) struct ZoneData {
    pub(crate) name: Name,
    pub(crate) mname: Name,
    pub(crate) rname: Name,
    refresh: u32,
    retry: u32,
    expire: u32,
    pub(crate) ttl: u32,
    targets: [Name; 5],
    /// `_tapis.<zone>`: explanations live under it.
    pub(crate) explain: Name,
}

impl ZoneData {
    pub(crate) fn new(c: &ZoneConfig) -> Result<ZoneData, Error> {
        let name = |what: &str, v: &str| {
            Name::from_ascii(v)
                .map(|n| n.to_lowercase())
                .map_err(|e| Error::Config(format!("{what} {v:?}: {e}")))
        };
        let target = |a: OrderAction| name("RPZ target", &a.rpz_target(&c.block_page_host));
        Ok(ZoneData {
            name: name("zone", &c.zone)?,
            mname: name("mname", &c.mname)?,
            rname: name("rname", &c.rname)?,
            refresh: c.refresh,
            retry: c.retry,
            expire: c.expire,
            ttl: c.ttl,
            targets: [
                target(OrderAction::Passthru)?,
                target(OrderAction::Drop)?,
                target(OrderAction::Nxdomain)?,
                target(OrderAction::Nodata)?,
                target(OrderAction::WalledGarden)?,
            ],
            explain: Name::relative_to(crate::EXPLANATION_LABEL, &name("zone", &c.zone)?)
                .map_err(|e| Error::Config(format!("zone {:?}: {e}", c.zone)))?,
        })
    }

    /// The zone's SOA record at `serial`, into `section` of `b`: the one
    /// way the primary writes its SOA (answers, negative answers, the
    /// frames of every transfer).
    pub(crate) fn put_soa(&self, b: &mut MessageBuilder, section: Section, serial: u32) {
        b.record(
            section,
            &self.name,
            rtype::SOA,
            class::IN,
            self.ttl,
            Rdata::Soa(&self.soa(serial)),
        );
    }

    /// The zone's NS record (its primary), into the answer section of `b`.
    pub(crate) fn put_ns(&self, b: &mut MessageBuilder) {
        b.record(
            Section::Answer,
            &self.name,
            rtype::NS,
            class::IN,
            self.ttl,
            Rdata::Ns(&self.mname),
        );
    }

    pub(crate) fn soa(&self, serial: u32) -> Soa {
        Soa {
            mname: self.mname.clone(),
            rname: self.rname.clone(),
            serial,
            refresh: self.refresh,
            retry: self.retry,
            expire: self.expire,
            minimum: self.ttl,
        }
    }

    pub(crate) fn target(&self, a: OrderAction) -> &Name {
        &self.targets[match a {
            OrderAction::Passthru => 0,
            OrderAction::Drop => 1,
            OrderAction::Nxdomain => 2,
            OrderAction::Nodata => 3,
            OrderAction::WalledGarden => 4,
        }]
    }
}
