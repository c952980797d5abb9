//! A bank: labelled signals with where they came from, and the indexes
//! that answer queries against them. Adding indexes the signal at once;
//! removing is a tombstone (the entry stays, marked removed, and stops
//! matching), so a bank never rebuilds to change.

use std::collections::HashMap;

use crate::index::{MAX_THRESHOLD, NameIndex, PdqIndex};
use crate::pdq::PdqHash;
use crate::signal::{NormalisedUrl, Signal};
use crate::{Error, Result};

/// Position of an entry in its bank.
pub type EntryId = u32;

/// What a signal is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// The taxonomy category (e.g. `terrorism`).
    pub category: Option<String>,
    /// Severity tier.
    pub tier: Option<String>,
    /// A group of related signals (a campaign, a video's frames).
    pub group: Option<String>,
}

/// Where a signal came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The notice or order id that is the signal's legal basis.
    pub source: Option<String>,
    pub added_by: Option<String>,
    /// RFC 3339 time it was added.
    pub added_at: Option<String>,
}

/// One signal in a bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: EntryId,
    pub signal: Signal,
    /// PDQ quality as given with the hash, when it was.
    pub quality: Option<u8>,
    pub labels: Labels,
    pub provenance: Provenance,
    /// Tombstoned: kept for the record, no longer matched.
    pub removed: bool,
}

/// A query's match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'a> {
    pub bank: &'a str,
    pub entry: &'a Entry,
    /// Hamming distance for PDQ, 0 for exact kinds.
    pub distance: u32,
}

/// What can be asked of a bank: the signal kinds, with a URL also matching
/// domain entries for its host.
pub type Query = Signal;

/// A named set of signals with its indexes.
#[derive(Debug, Clone)]
pub struct Bank {
    name: String,
    pdq_threshold: u32,
    entries: Vec<Entry>,
    pdq: PdqIndex,
    /// PDQ index id → entry id.
    pdq_entry: Vec<EntryId>,
    urls: NameIndex,
    domains: NameIndex,
    sha256: HashMap<[u8; 32], Vec<EntryId>>,
    md5: HashMap<[u8; 16], Vec<EntryId>>,
}

impl Bank {
    /// An empty bank matching PDQ at distance ≤ 31 (Meta's default).
    pub fn new(name: impl Into<String>) -> Bank {
        Bank {
            name: name.into(),
            pdq_threshold: 31,
            entries: Vec::new(),
            pdq: PdqIndex::new(),
            pdq_entry: Vec::new(),
            urls: NameIndex::new(),
            domains: NameIndex::new(),
            sha256: HashMap::new(),
            md5: HashMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pdq_threshold(&self) -> u32 {
        self.pdq_threshold
    }

    /// Set this bank's PDQ threshold (bits, at most 128).
    pub fn set_pdq_threshold(&mut self, t: u32) -> Result<()> {
        if t > MAX_THRESHOLD {
            return Err(Error::Threshold(t));
        }
        self.pdq_threshold = t;
        Ok(())
    }

    /// Every entry, tombstoned ones included, in the order added.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, id: EntryId) -> Option<&Entry> {
        self.entries.get(id as usize)
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| !e.removed).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Add a signal; it matches from now on.
    pub fn add(
        &mut self,
        signal: Signal,
        quality: Option<u8>,
        labels: Labels,
        provenance: Provenance,
    ) -> EntryId {
        let id = EntryId::try_from(self.entries.len()).unwrap_or(EntryId::MAX);
        match &signal {
            Signal::Pdq(h) => {
                self.pdq.add(*h);
                self.pdq_entry.push(id);
            }
            Signal::Url(u) => self.urls.add(u.key(), false, id),
            Signal::Domain(d) => self.domains.add(d.name.as_str(), d.include_subdomains, id),
            Signal::Sha256(b) => self.sha256.entry(*b).or_default().push(id),
            Signal::Md5(b) => self.md5.entry(*b).or_default().push(id),
        }
        self.entries.push(Entry {
            id,
            signal,
            quality,
            labels,
            provenance,
            removed: false,
        });
        id
    }

    /// Tombstone an entry: it stays listed, marked removed, and stops
    /// matching. `false` if unknown or already removed.
    pub fn remove(&mut self, id: EntryId) -> bool {
        let Some(e) = self.entries.get_mut(id as usize) else {
            return false;
        };
        if e.removed {
            return false;
        }
        e.removed = true;
        match &e.signal {
            Signal::Pdq(_) => {
                // entry ids grow as added, so pdq_entry is sorted; its
                // positions are the PDQ index's ids
                if let Ok(pos) = self.pdq_entry.binary_search(&id) {
                    self.pdq.remove(u32::try_from(pos).unwrap_or(u32::MAX));
                }
            }
            Signal::Url(u) => {
                self.urls.remove(u.key(), false, id);
            }
            Signal::Domain(d) => {
                self.domains
                    .remove(d.name.as_str(), d.include_subdomains, id);
            }
            Signal::Sha256(b) => {
                if let Some(v) = self.sha256.get_mut(b) {
                    v.retain(|&x| x != id);
                }
            }
            Signal::Md5(b) => {
                if let Some(v) = self.md5.get_mut(b) {
                    v.retain(|&x| x != id);
                }
            }
        }
        true
    }

    fn hit(&self, id: EntryId, distance: u32) -> Option<Match<'_>> {
        let entry = self.entries.get(id as usize)?;
        (!entry.removed).then_some(Match {
            bank: &self.name,
            entry,
            distance,
        })
    }

    /// Every live entry matching `query`. A URL matches URL entries with
    /// the same key and domain entries for its host; a domain matches
    /// domain entries for it or (with subdomains) for a parent; a PDQ hash
    /// matches within the bank's threshold, nearest first.
    pub fn lookup(&self, query: &Query) -> Vec<Match<'_>> {
        let mut ids = Vec::new();
        match query {
            Signal::Pdq(h) => return self.lookup_pdq(&[*h]).pop().unwrap_or_default(),
            Signal::Url(u) => {
                ids.extend_from_slice(self.urls.exact(u.key()));
                self.url_host(u, &mut ids);
            }
            Signal::Domain(d) => self.domains.domain(d.name.as_str(), &mut ids),
            Signal::Sha256(b) => ids.extend(self.sha256.get(b).into_iter().flatten()),
            Signal::Md5(b) => ids.extend(self.md5.get(b).into_iter().flatten()),
        }
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().filter_map(|id| self.hit(id, 0)).collect()
    }

    fn url_host(&self, u: &NormalisedUrl, ids: &mut Vec<EntryId>) {
        self.domains.domain(u.host(), ids);
    }

    /// PDQ matches for many hashes at once (queries that need a scan share
    /// one), each answer nearest first.
    pub fn lookup_pdq(&self, queries: &[PdqHash]) -> Vec<Vec<Match<'_>>> {
        // the threshold was checked when set
        let answers = self
            .pdq
            .search_batch(queries, self.pdq_threshold)
            .unwrap_or_default();
        answers
            .into_iter()
            .map(|hits| {
                let mut m: Vec<Match<'_>> = hits
                    .into_iter()
                    .filter_map(|h| {
                        let entry = *self.pdq_entry.get(h.id as usize)?;
                        self.hit(entry, h.distance)
                    })
                    .collect();
                m.sort_by_key(|x| (x.distance, x.entry.id));
                m
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::SignalKind;

    fn s(kind: &str, v: &str) -> Signal {
        Signal::parse(SignalKind::parse(kind).unwrap(), v).unwrap()
    }

    #[test]
    fn each_kind_matches_and_stops_matching_once_removed() {
        let mut b = Bank::new("terror");
        let labels = Labels {
            category: Some("terrorism".into()),
            ..Labels::default()
        };
        let prov = Provenance {
            source: Some("notice-42".into()),
            ..Provenance::default()
        };
        let url = b.add(
            s("url", "https://Example.com/v/1?utm_source=x"),
            None,
            labels.clone(),
            prov.clone(),
        );
        let dom = b.add(
            s("domain", "*.bad.example"),
            None,
            labels.clone(),
            prov.clone(),
        );
        let pdq_hex = "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22";
        let pdq = b.add(s("pdq", pdq_hex), Some(100), labels.clone(), prov.clone());
        let sha = b.add(
            s(
                "sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            None,
            labels,
            prov,
        );

        let m = b.lookup(&s("url", "http://example.com/v/1#t"));
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].entry.id, m[0].bank), (url, "terror"));
        assert_eq!(m[0].entry.provenance.source.as_deref(), Some("notice-42"));
        let m = b.lookup(&s("url", "https://cdn.x.bad.example/a"));
        assert_eq!(m[0].entry.id, dom);
        assert_eq!(b.lookup(&s("domain", "bad.example"))[0].entry.id, dom);
        assert!(b.lookup(&s("domain", "notbad.example")).is_empty());

        let near = PdqHash::parse(pdq_hex).unwrap().flip(3).flip(200);
        let m = b.lookup(&Signal::Pdq(near));
        assert_eq!((m[0].entry.id, m[0].distance), (pdq, 2));
        b.set_pdq_threshold(1).unwrap();
        assert!(b.lookup(&Signal::Pdq(near)).is_empty());

        assert_eq!(
            b.lookup(&s(
                "sha256",
                "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
            ))[0]
                .entry
                .id,
            sha
        );

        for id in [url, dom, pdq, sha] {
            assert!(b.remove(id));
            assert!(!b.remove(id));
        }
        assert!(b.lookup(&s("url", "http://example.com/v/1")).is_empty());
        assert!(b.lookup(&s("domain", "x.bad.example")).is_empty());
        assert!(
            b.lookup(&Signal::Pdq(PdqHash::parse(pdq_hex).unwrap()))
                .is_empty()
        );
        assert_eq!(b.entries().len(), 4);
        assert!(b.entries().iter().all(|e| e.removed));
        assert!(b.is_empty());
        assert_eq!(b.set_pdq_threshold(200), Err(Error::Threshold(200)));
    }
}
