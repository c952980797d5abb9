//! Compliance probes: ask an ISP's resolver about a name, and judge the
//! answer against what the Response Policy Zone says it should be.
//!
//! A probe is one recursive A query over UDP with a random id, matched to
//! its answer by id and question (nothing else is accepted). The verdicts
//! are deliberately plain: a blocked name is *enforced* when the answer is
//! the one its action calls for; a canary (a name no order covers) is
//! *over-blocked* when it comes back as a policy answer.

use std::net::SocketAddr;
use std::time::Duration;

use tapis_core::order::OrderAction;
use tokio::net::UdpSocket;

use crate::wire::{
    Message, MessageBuilder, Name, Question, Rcode, class, flags, parse_name_rdata, rtype,
};

/// What a resolver said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Answer {
        rcode: Rcode,
        /// CNAME targets in the answer, lowercased, without the final dot.
        cnames: Vec<String>,
        /// Answer records other than CNAMEs.
        data: usize,
    },
    /// No answer within the timeout.
    Silent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A blocked name got its policy answer.
    Enforced,
    /// A blocked name resolved as if nothing were ordered.
    NotEnforced,
    /// A canary came back blocked.
    Overblocked,
    /// A canary resolved normally.
    Clear,
    /// No usable answer (timeout, SERVFAIL, REFUSED).
    Unreachable,
}

/// Ask `resolver` for `name`'s A records.
pub async fn query(
    resolver: SocketAddr,
    name: &str,
    timeout: Duration,
) -> std::io::Result<Observed> {
    let qname = Name::from_ascii(name)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let bind: SocketAddr = if resolver.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(resolver).await?;
    let id: u16 = rand::random();
    let question = Question {
        name: qname,
        qtype: rtype::A,
        qclass: class::IN,
    };
    let mut b = MessageBuilder::new(id, flags::RD);
    b.question(&question);
    sock.send(&b.finish()).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => return Ok(Observed::Silent),
        };
        let Ok(msg) = Message::parse(&buf[..n]) else {
            continue;
        };
        let same_question = msg.questions.len() == 1
            && msg.questions[0].qtype == question.qtype
            && msg.questions[0].name.eq_ignore_case(&question.name);
        if msg.header.id != id || !msg.header.is_response() || !same_question {
            continue;
        }
        let mut cnames = Vec::new();
        let mut data = 0;
        for r in &msg.answers {
            if r.rtype == rtype::CNAME {
                if let Ok(target) = parse_name_rdata(msg.bytes, r.rdata.clone()) {
                    cnames.push(
                        target
                            .to_string()
                            .trim_end_matches('.')
                            .to_ascii_lowercase(),
                    );
                }
            } else {
                data += 1;
            }
        }
        return Ok(Observed::Answer {
            rcode: msg.header.rcode(),
            cnames,
            data,
        });
    }
}

/// Judge a blocked name's answer against its action.
pub fn judge_blocked(action: OrderAction, block_page_host: &str, observed: &Observed) -> Verdict {
    let host = block_page_host.trim_end_matches('.').to_ascii_lowercase();
    match (action, observed) {
        (OrderAction::Drop, Observed::Silent) => Verdict::Enforced,
        (_, Observed::Silent) => Verdict::Unreachable,
        (_, Observed::Answer { rcode, .. })
            if *rcode == Rcode::SERVFAIL || *rcode == Rcode::REFUSED =>
        {
            Verdict::Unreachable
        }
        (OrderAction::Nxdomain, Observed::Answer { rcode, .. }) if *rcode == Rcode::NXDOMAIN => {
            Verdict::Enforced
        }
        (
            OrderAction::Nodata,
            Observed::Answer {
                rcode,
                cnames,
                data,
            },
        ) if *rcode == Rcode::NOERROR && cnames.is_empty() && *data == 0 => Verdict::Enforced,
        (OrderAction::WalledGarden, Observed::Answer { cnames, .. }) if cnames.contains(&host) => {
            Verdict::Enforced
        }
        // an exception is "enforced" when the name is not blocked
        (OrderAction::Passthru, Observed::Answer { rcode, .. }) if *rcode != Rcode::NXDOMAIN => {
            Verdict::Enforced
        }
        _ => Verdict::NotEnforced,
    }
}

/// Judge a canary (a name no order covers).
pub fn judge_canary(block_page_host: &str, observed: &Observed) -> Verdict {
    let host = block_page_host.trim_end_matches('.').to_ascii_lowercase();
    match observed {
        Observed::Silent => Verdict::Unreachable,
        Observed::Answer { rcode, .. } if *rcode == Rcode::SERVFAIL || *rcode == Rcode::REFUSED => {
            Verdict::Unreachable
        }
        Observed::Answer { rcode, .. } if *rcode == Rcode::NXDOMAIN => Verdict::Overblocked,
        Observed::Answer { cnames, .. } if cnames.contains(&host) => Verdict::Overblocked,
        Observed::Answer { .. } => Verdict::Clear,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rcode: Rcode, cnames: &[&str], data: usize) -> Observed {
        Observed::Answer {
            rcode,
            cnames: cnames.iter().map(|s| s.to_string()).collect(),
            data,
        }
    }

    #[test]
    fn verdicts() {
        let host = "block.tapis.example.";
        use OrderAction::*;
        let table = [
            (Nxdomain, answer(Rcode::NXDOMAIN, &[], 0), Verdict::Enforced),
            (
                Nxdomain,
                answer(Rcode::NOERROR, &[], 1),
                Verdict::NotEnforced,
            ),
            (
                Nxdomain,
                answer(Rcode::SERVFAIL, &[], 0),
                Verdict::Unreachable,
            ),
            (Nxdomain, Observed::Silent, Verdict::Unreachable),
            (Nodata, answer(Rcode::NOERROR, &[], 0), Verdict::Enforced),
            (Nodata, answer(Rcode::NOERROR, &[], 1), Verdict::NotEnforced),
            (
                WalledGarden,
                answer(Rcode::NOERROR, &["block.tapis.example"], 1),
                Verdict::Enforced,
            ),
            (
                WalledGarden,
                answer(Rcode::NOERROR, &[], 1),
                Verdict::NotEnforced,
            ),
            (Drop, Observed::Silent, Verdict::Enforced),
            (Drop, answer(Rcode::NOERROR, &[], 1), Verdict::NotEnforced),
        ];
        for (action, obs, want) in table {
            assert_eq!(
                judge_blocked(action, host, &obs),
                want,
                "{action:?} {obs:?}"
            );
        }
        assert_eq!(
            judge_canary(host, &answer(Rcode::NOERROR, &[], 1)),
            Verdict::Clear
        );
        assert_eq!(
            judge_canary(host, &answer(Rcode::NXDOMAIN, &[], 0)),
            Verdict::Overblocked
        );
        assert_eq!(
            judge_canary(host, &answer(Rcode::NOERROR, &["block.tapis.example"], 1)),
            Verdict::Overblocked
        );
        assert_eq!(judge_canary(host, &Observed::Silent), Verdict::Unreachable);
    }
}
