//! `tapis hash pdq` and `tapis match` as a platform runs them: the real
//! binary on the PDQ reference images and bank files in both formats.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_tapis");

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tapis-match/testdata")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// `tapis match --bank BANK --images IMAGES EXTRA…`
fn run_match(bank: &Path, images: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "match",
        "--bank",
        bank.to_str().expect("utf-8"),
        "--images",
        images.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The reference's hash and quality of a test image.
fn expected(name: &str) -> (String, String) {
    let text = std::fs::read_to_string(testdata("expected.txt")).expect("expected.txt");
    let line = text
        .lines()
        .find(|l| l.ends_with(name) && !l.starts_with("dihedral"))
        .expect("image listed");
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[0].to_owned(), f[1].to_owned())
}

#[test]
fn hash_pdq_prints_the_reference_hash_quality_and_file() {
    let a = testdata("grey-4-640x480.png");
    let b = testdata("grey-2-100x75.png");
    let out = run(&[
        "hash",
        "pdq",
        a.to_str().expect("utf-8"),
        b.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, (path, name)) in lines
        .iter()
        .zip([(&a, "grey-4-640x480.png"), (&b, "grey-2-100x75.png")])
    {
        let (hash, quality) = expected(name);
        assert_eq!(*line, format!("{hash} {quality} {}", path.display()));
    }

    let out = run(&["hash", "pdq", "--dihedral", a.to_str().expect("utf-8")]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 8);
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.ends_with(" rotate90")),
        "{text}"
    );
}

#[test]
fn hash_pdq_reports_each_bad_file_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\ngarbage").expect("write");
    let good = testdata("grey-1-64x64.png");
    let missing = dir.path().join("missing.jpg");
    let out = run(&[
        "hash",
        "pdq",
        bad.to_str().expect("utf-8"),
        good.to_str().expect("utf-8"),
        missing.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    // the good file is still hashed
    assert_eq!(stdout(&out).lines().count(), 1);
    let err = stderr(&out);
    assert!(err.contains("bad.png: image could not be decoded"), "{err}");
    assert!(err.contains("missing.jpg: cannot read the file"), "{err}");
}

#[test]
fn match_checks_a_folder_of_images_and_a_list_of_urls_against_a_bank() {
    let dir = tempfile::tempdir().expect("tempdir");
    let images = dir.path().join("uploads");
    std::fs::create_dir_all(images.join("sub")).expect("mkdir");
    for f in ["grey-4-640x480.png", "grey-2-100x75.png"] {
        std::fs::copy(testdata(f), images.join("sub").join(f)).expect("copy");
    }
    std::fs::copy(
        testdata("bridge-square-128x128.jpg"),
        images.join("bridge.jpg"),
    )
    .expect("copy");
    std::fs::write(images.join("notes.txt"), "not an image").expect("write");

    // the bank holds grey-4's hash with 5 bits flipped and a domain
    let (hash, _) = expected("grey-4-640x480.png");
    let mut bits = u128::from_str_radix(&hash[32..], 16).expect("hex");
    bits ^= 0b1011_0000_0001_0001;
    let near = format!("{}{bits:032x}", &hash[..32]);
    let bank = dir.path().join("bank.csv");
    std::fs::write(
        &bank,
        format!(
            "type,value,category,source\npdq,{near},terrorism,notice-15\ndomain,*.bad.example,terrorism,order-3\nurl,https://ok.example/v?id=9,terrorism,notice-16\n"
        ),
    )
    .expect("write");
    let urls = dir.path().join("urls.txt");
    std::fs::write(
        &urls,
        "https://cdn.bad.example/x.jpg\nhttp://OK.example/v?utm_source=feed&id=9#t\nhttps://fine.example/\nbad.example\nnot a url/\n",
    )
    .expect("write");

    let out = run_match(&bank, &images, &["--urls", urls.to_str().expect("utf-8")]);
    let text = stdout(&out);
    let err = stderr(&out);
    // notes.txt and the bad URL line are reported, the rest checked
    assert_eq!(out.status.code(), Some(1), "{text}\n{err}");
    assert!(
        err.contains("notes.txt: image format not recognised"),
        "{err}"
    );
    assert!(err.contains("urls.txt:5:"), "{err}");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(rows[0][0].ends_with("grey-4-640x480.png"));
    assert_eq!(
        &rows[0][1..8],
        [
            "pdq",
            "5",
            near.as_str(),
            "terrorism",
            "-",
            "-",
            "notice-15"
        ]
    );
    assert_eq!(
        rows[1][..4],
        [
            "https://cdn.bad.example/x.jpg",
            "domain",
            "0",
            "*.bad.example"
        ]
    );
    assert_eq!(rows[2][1], "url");
    assert_eq!(rows[2][7], "notice-16");
    assert_eq!(rows[3][..2], ["bad.example", "domain"]);

    // a tighter threshold drops the image match
    let out = run_match(&bank, &images.join("sub"), &["--threshold", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "only the header");
}

#[test]
fn match_reads_a_plain_hash_list_and_refuses_a_bad_bank() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hash, quality) = expected("grey-2-100x75.png");
    let bank = dir.path().join("hashes.txt");
    std::fs::write(&bank, format!("{hash} {quality}\n")).expect("write");
    let images = dir.path().join("in");
    std::fs::create_dir(&images).expect("mkdir");
    std::fs::copy(testdata("grey-2-100x75.png"), images.join("a.png")).expect("copy");
    let out = run_match(&bank, &images, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains(&format!("\tpdq\t0\t{hash}\t"))),
        "{text}"
    );

    std::fs::write(&bank, format!("{hash}\n{}\n", &hash[1..])).expect("write");
    let out = run_match(&bank, &images, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 2: pdq must be 64 hex digits, got 63 characters"),
        "{}",
        stderr(&out)
    );
}
