//! Checkpoints as C2SP signed notes (c2sp.org/signed-note,
//! c2sp.org/tlog-checkpoint) and witnesses' cosignatures
//! (c2sp.org/tlog-cosignature, Ed25519 `cosignature/v1`).
//!
//! A checkpoint's text is `<origin>\n<size>\n<base64 root>\n`; a signature
//! line is `— <key name> base64(key id || signature)`, the key id being
//! `SHA-256(name || "\n" || type || public key)[:4]` with type 0x01 for the
//! log's Ed25519 signature and 0x04 for a cosignature, whose signature is
//! `u64be(time) || Ed25519("cosignature/v1\ntime <time>\n" || text)`.
//! Keys travel as verifier keys: `<name>+<hex key id>+base64(type || key)`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{Hash, hash_from_b64, hash_to_b64};
use crate::sign::Signer;
use crate::{Error, Result};

/// Signature type of an Ed25519 note signature (the log's own).
pub const TYPE_ED25519: u8 = 0x01;
/// Signature type of a timestamped Ed25519 cosignature (a witness's).
pub const TYPE_COSIGNATURE: u8 = 0x04;
/// The most signature lines a note may carry (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 64;

/// `SHA-256(name || "\n" || type || public)[:4]`.
pub fn key_id(name: &str, sig_type: u8, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([sig_type]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A key name or an origin: non-empty, printable, no spaces or `+`, and
/// not starting with `{` (so a note's text is never a JSON document, the
/// other thing tapis's key signs).
pub fn check_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 {
        return Err(Error::invalid(field, "must be 1 to 255 characters"));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '+' || c == '—')
    {
        return Err(Error::invalid(
            field,
            "must not contain spaces, control characters, `+` or `—` (use a schema-less URL such as tapis.example/log)",
        ));
    }
    if name.starts_with('{') {
        return Err(Error::invalid(field, "must not start with `{`"));
    }
    Ok(())
}

/// A tree head: what a checkpoint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            hash_to_b64(&self.root)
        )
    }

    /// Read a checkpoint's note text (extension lines are refused: tapis
    /// writes none, and a witness only vouches for the first three lines).
    pub fn parse_body(text: &str) -> Result<Checkpoint> {
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .ok_or_else(|| Error::invalid("checkpoint", "the text must end in a newline"))?
            .split('\n')
            .collect();
        let [origin, size, root] = lines.as_slice() else {
            return Err(Error::invalid(
                "checkpoint",
                "expected exactly three lines: origin, tree size, base64 root hash",
            ));
        };
        check_name("checkpoint.origin", origin)?;
        let size: u64 = size
            .parse()
            .ok()
            .filter(|_| *size == "0" || !size.starts_with('0'))
            .ok_or_else(|| {
                Error::invalid(
                    "checkpoint.size",
                    "not a decimal tree size without leading zeroes",
                )
            })?;
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root: hash_from_b64("checkpoint.root", root)?,
        })
    }
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigLine {
    pub name: String,
    pub key_id: [u8; 4],
    pub sig: Vec<u8>,
}

impl SigLine {
    /// `— <name> <base64(key id || sig)>\n`
    pub fn line(&self) -> String {
        let mut bytes = self.key_id.to_vec();
        bytes.extend_from_slice(&self.sig);
        format!("— {} {}\n", self.name, STANDARD.encode(bytes))
    }

    pub fn parse(line: &str) -> Result<SigLine> {
        let rest = line
            .strip_prefix("— ")
            .ok_or_else(|| Error::invalid("signature", "a signature line starts with `— `"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| Error::invalid("signature", "expected `— <key name> <base64>`"))?;
        check_name("signature.name", name)?;
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| Error::invalid("signature", "the signature is not base64"))?;
        if bytes.len() < 5 {
            return Err(Error::invalid("signature", "the signature is too short"));
        }
        Ok(SigLine {
            name: name.to_owned(),
            key_id: [bytes[0], bytes[1], bytes[2], bytes[3]],
            sig: bytes[4..].to_vec(),
        })
    }
}

/// A signed note: its text (ending in a newline) and its signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub sigs: Vec<SigLine>,
}

impl Note {
    pub fn parse(s: &str) -> Result<Note> {
        if s.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Error::invalid(
                "note",
                "control characters other than newline are not allowed",
            ));
        }
        let split = s.rfind("\n\n").ok_or_else(|| {
            Error::invalid("note", "no blank line between the text and its signatures")
        })?;
        let text = &s[..=split];
        let sigs = s[split + 2..]
            .strip_suffix('\n')
            .ok_or_else(|| Error::invalid("note", "the note must end in a newline"))?;
        let sigs = sigs
            .split('\n')
            .map(SigLine::parse)
            .collect::<Result<Vec<_>>>()?;
        if sigs.len() > MAX_SIGNATURES {
            return Err(Error::invalid(
                "note",
                format!("more than {MAX_SIGNATURES} signatures"),
            ));
        }
        Ok(Note {
            text: text.to_owned(),
            sigs,
        })
    }

    /// The note as text: the text, a blank line, the signature lines.
    pub fn format(&self) -> String {
        let mut s = self.text.clone();
        s.push('\n');
        for l in &self.sigs {
            s.push_str(&l.line());
        }
        s
    }

    /// Verify the signature of `key` on this note; for a cosignature,
    /// returns its time. Fails if the key has not signed or its signature
    /// does not verify.
    pub fn verify(&self, key: &Vkey) -> Result<Option<u64>> {
        let id = key.key_id();
        let line = self
            .sigs
            .iter()
            .find(|l| l.name == key.name && l.key_id == id)
            .ok_or_else(|| {
                Error::invalid(
                    "note",
                    format!("no signature by {} (key id {})", key.name, hex::encode(id)),
                )
            })?;
        key.check(&self.text, line)
    }
}

/// A verifier key: name, signature type and Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vkey {
    pub name: String,
    pub sig_type: u8,
    pub public: [u8; 32],
}

impl Vkey {
    pub fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, self.sig_type, &self.public)
    }

    /// `<name>+<hex key id>+base64(type || public key)`
    pub fn parse(s: &str) -> Result<Vkey> {
        // base64 may hold `+`; the name and the id never do
        let mut it = s.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (it.next(), it.next(), it.next()) else {
            return Err(Error::invalid(
                "vkey",
                "expected <name>+<hex key id>+<base64 type and key>",
            ));
        };
        check_name("vkey.name", name)?;
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| Error::invalid("vkey", "the key is not base64"))?;
        let (Some(&sig_type), Ok(public)) = (bytes.first(), <[u8; 32]>::try_from(&bytes[1..]))
        else {
            return Err(Error::invalid(
                "vkey",
                "expected a type byte and a 32-byte Ed25519 key",
            ));
        };
        if sig_type != TYPE_ED25519 && sig_type != TYPE_COSIGNATURE {
            return Err(Error::invalid(
                "vkey",
                "only Ed25519 (type 01) and Ed25519 cosignature (type 04) keys are supported",
            ));
        }
        crate::sign::parse_public_key("vkey", &STANDARD.encode(public))?;
        let v = Vkey {
            name: name.to_owned(),
            sig_type,
            public,
        };
        if hex::encode(v.key_id()) != id.to_ascii_lowercase() {
            return Err(Error::invalid(
                "vkey",
                "the key id does not match the name and key",
            ));
        }
        Ok(v)
    }

    fn check(&self, text: &str, line: &SigLine) -> Result<Option<u64>> {
        let bad = || {
            Error::invalid(
                "note",
                format!("the signature by {} does not verify", self.name),
            )
        };
        let key = VerifyingKey::from_bytes(&self.public).map_err(|_| bad())?;
        match self.sig_type {
            TYPE_ED25519 => {
                let sig = Signature::from_slice(&line.sig).map_err(|_| bad())?;
                key.verify_strict(text.as_bytes(), &sig)
                    .map_err(|_| bad())?;
                Ok(None)
            }
            _ => {
                if line.sig.len() != 72 {
                    return Err(bad());
                }
                let mut t = [0u8; 8];
                t.copy_from_slice(&line.sig[..8]);
                let time = u64::from_be_bytes(t);
                let sig = Signature::from_slice(&line.sig[8..]).map_err(|_| bad())?;
                key.verify_strict(cosigned_message(text, time).as_bytes(), &sig)
                    .map_err(|_| bad())?;
                Ok(Some(time))
            }
        }
    }
}

impl std::fmt::Display for Vkey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bytes = vec![self.sig_type];
        bytes.extend_from_slice(&self.public);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id()),
            STANDARD.encode(bytes)
        )
    }
}

fn cosigned_message(text: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

/// The log's verifier key: its origin as the name, tapis's signing key.
pub fn log_vkey(origin: &str, signer: &Signer) -> Vkey {
    Vkey {
        name: origin.to_owned(),
        sig_type: TYPE_ED25519,
        public: signer.public_key(),
    }
}

/// Sign a checkpoint as the log (key name = origin).
pub fn sign_checkpoint(cp: &Checkpoint, signer: &Signer) -> Result<Note> {
    check_name("origin", &cp.origin)?;
    let text = cp.body();
    let sig = signer.sign_note_text(&text);
    Ok(Note {
        sigs: vec![SigLine {
            name: cp.origin.clone(),
            key_id: log_vkey(&cp.origin, signer).key_id(),
            sig: sig.to_vec(),
        }],
        text,
    })
}

/// A witness's key: a name and an Ed25519 key that makes cosignatures.
pub struct CosignerKey {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for CosignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosignerKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CosignerKey {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<CosignerKey> {
        check_name("witness name", name)?;
        Ok(CosignerKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    pub fn vkey(&self) -> Vkey {
        Vkey {
            name: self.name.clone(),
            sig_type: TYPE_COSIGNATURE,
            public: self.key.verifying_key().to_bytes(),
        }
    }

    /// A `cosignature/v1` line over a checkpoint's text at `time` (seconds).
    pub fn cosign(&self, text: &str, time: u64) -> SigLine {
        let sig = self.key.sign(cosigned_message(text, time).as_bytes());
        let mut bytes = time.to_be_bytes().to_vec();
        bytes.extend_from_slice(&sig.to_bytes());
        SigLine {
            name: self.name.clone(),
            key_id: self.vkey().key_id(),
            sig: bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_note_verifies() {
        // c2sp.org/signed-note, "Example"
        let vkey =
            Vkey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
                .expect("vkey");
        let text = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let note = Note::parse(text).expect("note");
        assert_eq!(note.verify(&vkey), Ok(None));
        assert_eq!(note.format(), text);
        let mut forged = note.clone();
        forged.text = "This is another message.\n".into();
        assert!(forged.verify(&vkey).is_err());
    }

    #[test]
    fn checkpoints_sign_cosign_and_round_trip() {
        let signer = Signer::from_seed([1; 32]);
        let cp = Checkpoint {
            origin: "tapis.example/test".into(),
            size: 8,
            root: [5; 32],
        };
        let mut note = sign_checkpoint(&cp, &signer).expect("sign");
        assert_eq!(Checkpoint::parse_body(&note.text), Ok(cp.clone()));
        let log = log_vkey(&cp.origin, &signer);
        assert_eq!(Vkey::parse(&log.to_string()), Ok(log.clone()));
        assert_eq!(note.verify(&log), Ok(None));
        let w = CosignerKey::from_seed("witness.example/w1", [2; 32]).expect("key");
        note.sigs.push(w.cosign(&note.text, 1_700_000_000));
        let again = Note::parse(&note.format()).expect("parse");
        assert_eq!(again.verify(&w.vkey()), Ok(Some(1_700_000_000)));
        assert_eq!(again.verify(&log), Ok(None));
        // a cosignature's time is signed
        let mut moved = again.clone();
        moved.sigs[1].sig[7] ^= 1;
        assert!(moved.verify(&w.vkey()).is_err());
        assert!(Checkpoint::parse_body("o\n01\nAAAA\n").is_err());
        assert!(check_name("origin", "{json").is_err());
        assert!(check_name("origin", "a b").is_err());
    }
}
