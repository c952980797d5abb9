//! `tapis hash pdq` and `tapis match`: content matching from the command
//! line, without a server or a database, so a platform can compare tapis's
//! PDQ hashes with Meta's tools and try a bank on its own files. The work
//! is `tapis_match`; this module reads files and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use tapis_match::pdq::{self, ImageLimits};
use tapis_match::{Bank, Signal, SignalKind, UrlNormaliser, bank_file};

use crate::cli::print_line;

/// Files larger than this are not read (no image format needs more for
/// what PDQ accepts; see the pixel limits).
const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// Meta's advice: hashes below this quality are unreliable.
const LOW_QUALITY: u8 = 50;

/// Hash files.
#[derive(clap::Args, Debug)]
pub struct HashArgs {
    #[command(subcommand)]
    pub command: HashCommand,
}

#[derive(Subcommand, Debug)]
pub enum HashCommand {
    /// Print the PDQ hash of each image: `<64 hex digits> <quality> <file>`.
    ///
    /// The hash is Meta's PDQ (the hex as Meta's reference tools write it,
    /// most significant word first) and the quality is the reference's
    /// 0-100 score (Meta advises discarding hashes under 50). Images are
    /// jpeg, png, gif, webp or bmp, hashed at full size (Meta's C++
    /// command-line tool first shrinks large images to 512x512, so its
    /// hashes of large images can differ by a few bits). A file that cannot
    /// be hashed is reported on stderr; the exit status is then 1.
    Pdq {
        /// Image files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Also print the seven rotations and flips, one line each with the
        /// variant's name after the file.
        #[arg(long)]
        dihedral: bool,
    },
}

/// Check images, URLs and domains against a bank file.
///
/// The bank is a file of one PDQ hash per line (optionally followed by its
/// quality), or CSV with a header naming type and value and optionally
/// category, tier, group, source, added_by, added_at and quality; types are
/// url, domain (`*.example.com` covers subdomains), sha256, md5 and pdq.
///
/// Prints one tab-separated line per match, after a header: the query (file
/// or URL), the signal's type, the distance (PDQ Hamming distance, 0 for
/// exact types), the signal, its category, tier, group and source, and a
/// note (`low-quality` for an image whose PDQ quality is under 50). Images
/// are matched by PDQ (within --threshold bits) and by SHA-256 and MD5 of
/// their bytes; a URL matches URL signals after normalisation and domain
/// signals for its host. Exit status: 0 checked (matches or not), 1 some
/// input could not be checked (said on stderr), 2 the bank did not load.
#[derive(clap::Args, Debug)]
#[command(after_help = MATCH_HELP)]
pub struct MatchArgs {
    /// The bank file.
    #[arg(long, value_name = "FILE")]
    bank: PathBuf,
    /// A folder of images to check (subfolders included).
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// A file of URLs (or bare domain names) to check, one per line.
    #[arg(long, value_name = "FILE")]
    urls: Option<PathBuf>,
    /// Largest PDQ Hamming distance that matches.
    #[arg(long, value_name = "BITS", default_value_t = 31)]
    threshold: u32,
}

const MATCH_HELP: &str = "Examples:
  tapis match --bank hashes.txt --images ./uploads
  tapis match --bank bank.csv --urls links.txt --threshold 24";

pub fn run_hash(args: HashArgs) -> anyhow::Result<ExitCode> {
    let HashCommand::Pdq { files, dihedral } = args.command;
    let limits = ImageLimits::default();
    let mut failed = false;
    for f in &files {
        let result = read_capped(f).and_then(|bytes| {
            if dihedral {
                let d = pdq::hash_image_dihedral(&bytes, &limits)?;
                let names = [
                    "original",
                    "rotate90",
                    "rotate180",
                    "rotate270",
                    "flipx",
                    "flipy",
                    "flipplus1",
                    "flipminus1",
                ];
                for (h, n) in d.all().iter().zip(names) {
                    print_line(&format!("{h} {} {} {n}", d.quality, f.display()));
                }
            } else {
                let r = pdq::hash_image(&bytes, &limits)?;
                print_line(&format!("{} {} {}", r.hash, r.quality, f.display()));
            }
            Ok(())
        });
        if let Err(e) = result {
            eprintln!("tapis: {}: {e:#}", f.display());
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn read_capped(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).context("cannot read the file")?;
    if meta.len() > MAX_FILE_BYTES {
        bail!("the file is over {} MiB", MAX_FILE_BYTES >> 20);
    }
    std::fs::read(path).context("cannot read the file")
}

pub fn run_match(args: MatchArgs) -> anyhow::Result<ExitCode> {
    if args.images.is_none() && args.urls.is_none() {
        eprintln!("tapis match: nothing to check: give --images DIR and/or --urls FILE");
        return Ok(ExitCode::from(2));
    }
    let urls = UrlNormaliser::default();
    let bank = match load_bank(&args.bank, &urls) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tapis match: bank {}: {e:#}", args.bank.display());
            return Ok(ExitCode::from(2));
        }
    };
    let mut bank = bank;
    if let Err(e) = bank.set_pdq_threshold(args.threshold) {
        eprintln!("tapis match: --threshold: {e}");
        return Ok(ExitCode::from(2));
    }
    print_line("query\ttype\tdistance\tsignal\tcategory\ttier\tgroup\tsource\tnote");
    let mut failed = false;
    let (mut checked, mut matched) = (0usize, 0usize);
    if let Some(dir) = &args.images {
        let mut files = Vec::new();
        if let Err(e) = list_files(dir, &mut files) {
            eprintln!("tapis match: {}: {e:#}", dir.display());
            failed = true;
        }
        files.sort();
        let limits = ImageLimits::default();
        for f in files {
            let name = f.display().to_string();
            let bytes = match read_capped(&f) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("tapis match: {name}: {e:#}");
                    failed = true;
                    continue;
                }
            };
            checked += 1;
            let mut queries = vec![
                (Signal::Sha256(sha256(&bytes)), ""),
                (Signal::Md5(md5(&bytes)), ""),
            ];
            match pdq::hash_image(&bytes, &limits) {
                Ok(r) => {
                    let note = if r.quality < LOW_QUALITY {
                        "low-quality"
                    } else {
                        ""
                    };
                    queries.push((Signal::Pdq(r.hash), note));
                }
                Err(e) => {
                    eprintln!("tapis match: {name}: {e}");
                    failed = true;
                }
            }
            for (q, note) in queries {
                matched += report(&bank, &name, &q, note);
            }
        }
    }
    if let Some(path) = &args.urls {
        let text = match read_capped(path)
            .and_then(|b| String::from_utf8(b).context("the file is not UTF-8 text"))
        {
            Ok(t) => t,
            Err(e) => {
                eprintln!("tapis match: {}: {e:#}", path.display());
                return Ok(ExitCode::from(1));
            }
        };
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let q = Signal::parse_with(SignalKind::Url, line, &urls).or_else(|url_err| {
                // a bare name is a domain query; otherwise say why the URL failed
                if line.contains('/') {
                    Err(url_err)
                } else {
                    Signal::parse(SignalKind::Domain, line).map_err(|_| url_err)
                }
            });
            match q {
                Ok(q) => {
                    checked += 1;
                    matched += report(&bank, line, &q, "");
                }
                Err(e) => {
                    eprintln!("tapis match: {}:{}: {e}", path.display(), no + 1);
                    failed = true;
                }
            }
        }
    }
    eprintln!(
        "tapis match: checked {checked} against {} signals: {matched} matches",
        bank.len()
    );
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn load_bank(path: &Path, urls: &UrlNormaliser) -> anyhow::Result<Bank> {
    let bytes = read_capped(path)?;
    let text = String::from_utf8(bytes).context("the file is not UTF-8 text")?;
    let name = path
        .file_stem()
        .map_or_else(|| "bank".to_owned(), |s| s.to_string_lossy().into_owned());
    Ok(bank_file::parse(&name, &text, urls)?)
}

/// Print the matches of one query; returns how many.
fn report(bank: &Bank, query: &str, q: &Signal, note: &str) -> usize {
    let matches = bank.lookup(q);
    for m in &matches {
        let e = m.entry;
        let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
        print_line(&format!(
            "{query}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            e.signal.kind(),
            m.distance,
            e.signal,
            opt(&e.labels.category),
            opt(&e.labels.tier),
            opt(&e.labels.group),
            opt(&e.provenance.source),
            if note.is_empty() { "-" } else { note },
        ));
    }
    matches.len()
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).context("cannot list the folder")? {
        let entry = entry.context("cannot list the folder")?;
        let kind = entry.file_type().context("cannot list the folder")?;
        if kind.is_dir() {
            list_files(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn md5(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(bytes).into()
}
