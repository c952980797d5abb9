//! What an RPZ policy record's CNAME target means (draft-vixie-dnsop-dns-rpz
//! §5): `.` NXDOMAIN, `*.` NODATA, `rpz-passthru.` PASSTHRU, `rpz-drop.`
//! DROP, `rpz-tcp-only.` TCP-only, anything else a rewrite to local data
//! (a walled garden). The one mapping the import reader, the resolver's
//! policy engine and its zone writer share.

use tapis_core::order::OrderAction;

/// The policy a QNAME trigger's CNAME selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CnamePolicy {
    Nxdomain,
    Nodata,
    Passthru,
    Drop,
    TcpOnly,
    /// Not a special target: answer with the CNAME (a walled garden).
    Local,
}

const NXDOMAIN: &[u8] = b"\x00";
const NODATA: &[u8] = b"\x01*\x00";
const PASSTHRU: &[u8] = b"\x0crpz-passthru\x00";
const DROP: &[u8] = b"\x08rpz-drop\x00";
const TCP_ONLY: &[u8] = b"\x0crpz-tcp-only\x00";

impl CnamePolicy {
    /// The policy of a CNAME to `target` (uncompressed wire, any case).
    pub fn of_target(target: &[u8]) -> CnamePolicy {
        let t = target.to_ascii_lowercase();
        match t.as_slice() {
            NXDOMAIN => CnamePolicy::Nxdomain,
            NODATA => CnamePolicy::Nodata,
            PASSTHRU => CnamePolicy::Passthru,
            DROP => CnamePolicy::Drop,
            TCP_ONLY => CnamePolicy::TcpOnly,
            _ => CnamePolicy::Local,
        }
    }

    /// The special target (uncompressed wire) that selects this policy;
    /// `None` for local data, whose target is its own.
    pub fn target(self) -> Option<&'static [u8]> {
        Some(match self {
            CnamePolicy::Nxdomain => NXDOMAIN,
            CnamePolicy::Nodata => NODATA,
            CnamePolicy::Passthru => PASSTHRU,
            CnamePolicy::Drop => DROP,
            CnamePolicy::TcpOnly => TCP_ONLY,
            CnamePolicy::Local => return None,
        })
    }

    /// The order action that publishes this policy (TCP-only has none: an
    /// order never asks for it).
    pub fn order_action(self) -> Option<OrderAction> {
        Some(match self {
            CnamePolicy::Nxdomain => OrderAction::Nxdomain,
            CnamePolicy::Nodata => OrderAction::Nodata,
            CnamePolicy::Passthru => OrderAction::Passthru,
            CnamePolicy::Drop => OrderAction::Drop,
            CnamePolicy::TcpOnly => return None,
            CnamePolicy::Local => OrderAction::WalledGarden,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Name;

    #[test]
    fn targets_round_trip_with_order_actions() {
        for action in [
            OrderAction::Nxdomain,
            OrderAction::Nodata,
            OrderAction::Passthru,
            OrderAction::Drop,
            OrderAction::WalledGarden,
        ] {
            let target = Name::from_ascii(&action.rpz_target("block.tapis.example")).expect("t");
            let policy = CnamePolicy::of_target(target.wire());
            assert_eq!(policy.order_action(), Some(action));
            if let Some(t) = policy.target() {
                assert_eq!(t, target.wire());
            }
        }
        assert_eq!(
            CnamePolicy::of_target(b"\x0cRPZ-TCP-ONLY\x00"),
            CnamePolicy::TcpOnly
        );
        assert_eq!(CnamePolicy::TcpOnly.order_action(), None);
    }
}
