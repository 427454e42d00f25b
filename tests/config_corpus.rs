// SPDX-License-Identifier: GPL-2.0-or-later
//! The configuration corpus: ldirector's verdict on every tests/config/*.cf
//! must be the one the real ldirectord 4.12 gave (recorded next to it in
//! NAME.cf.verdict by tests/config/regen-verdicts.sh), except where a file
//! documents a deliberate difference with a header line
//! `# ldirector: valid|invalid -- reason`.
//!
//! Each file also lists every diagnostic ldirector must print for it:
//! `# expect: error LINE:COL text` or `# expect: warning LINE:COL text`
//! (text is a substring of the message). Every error must name
//! FILE:LINE:COL.
//!
//! Names resolve from tests/config/hosts and /etc/services only (the same
//! hosts file the oracle ran with), so no test touches DNS.

use std::path::{Path, PathBuf};

use ldirector::config::{self, Diagnostic, FilesEnvironment, Severity};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config")
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/config exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cf"))
        .collect();
    files.sort();
    files
}

fn environment() -> FilesEnvironment {
    FilesEnvironment::new(
        &corpus_dir().join("hosts"),
        Path::new("/etc/services"),
        "director.example.test",
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Valid,
    Invalid,
}

fn parse_verdict(word: &str) -> Option<Verdict> {
    match word {
        "valid" => Some(Verdict::Valid),
        "invalid" => Some(Verdict::Invalid),
        _ => None,
    }
}

/// ldirectord's recorded verdict and, when invalid, its line and message.
struct Recorded {
    verdict: Verdict,
    line: Option<u32>,
    message: String,
}

fn recorded(cf: &Path) -> Result<Recorded, String> {
    let path = PathBuf::from(format!("{}.verdict", cf.display()));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (run tests/config/regen-verdicts.sh as root)",
            path.display()
        )
    })?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_string)
    };
    let verdict = field("verdict")
        .and_then(|v| parse_verdict(&v))
        .ok_or_else(|| format!("{}: no valid/invalid verdict", path.display()))?;
    Ok(Recorded {
        verdict,
        line: field("line").and_then(|l| l.parse().ok()),
        message: field("message").unwrap_or_default(),
    })
}

/// One `# expect:` line.
#[derive(Debug)]
struct Expected {
    severity: Severity,
    line: u32,
    col: u32,
    text: String,
}

fn expectations(source: &str) -> Result<(Option<Verdict>, Vec<Expected>), String> {
    let mut override_verdict = None;
    let mut expected = Vec::new();
    for l in source.lines() {
        if let Some(rest) = l.strip_prefix("# ldirector: ") {
            let word = rest.split_whitespace().next().unwrap_or("");
            if !rest.contains(" -- ") {
                return Err(format!("{l:?}: a difference needs a reason after ' -- '"));
            }
            override_verdict =
                Some(parse_verdict(word).ok_or_else(|| format!("bad verdict in {l:?}"))?);
        } else if let Some(rest) = l.strip_prefix("# expect: ") {
            let mut parts = rest.splitn(3, ' ');
            let severity = match parts.next() {
                Some("error") => Severity::Error,
                Some("warning") => Severity::Warning,
                _ => return Err(format!("{l:?}: expected 'error' or 'warning'")),
            };
            let place = parts.next().unwrap_or("");
            let (line, col) = place
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or_else(|| format!("{l:?}: expected LINE:COL"))?;
            let text = parts.next().unwrap_or("").to_string();
            if text.is_empty() {
                return Err(format!("{l:?}: expected a message excerpt"));
            }
            expected.push(Expected {
                severity,
                line,
                col,
                text,
            });
        }
    }
    Ok((override_verdict, expected))
}

fn matches(e: &Expected, d: &Diagnostic) -> bool {
    e.severity == d.severity
        && e.line == d.span.line
        && e.col == d.span.col
        && d.to_string().contains(&e.text)
}

fn check_file(cf: &Path, env: &FilesEnvironment) -> Result<(), String> {
    let name = cf.display().to_string();
    let source = std::fs::read(cf).map_err(|e| format!("{name}: {e}"))?;
    let source = String::from_utf8_lossy(&source);
    let recorded = recorded(cf)?;
    let (override_verdict, expected) = expectations(&source).map_err(|e| format!("{name}: {e}"))?;
    let want = override_verdict.unwrap_or(recorded.verdict);
    let parsed = config::parse_str(&name, &source, env);
    let (ours, diags) = match &parsed {
        Ok(p) => (Verdict::Valid, p.warnings.clone()),
        Err(e) => (Verdict::Invalid, e.diagnostics().to_vec()),
    };
    let mut problems = Vec::new();
    if ours != want {
        let theirs = match recorded.line {
            Some(l) => format!(" (ldirectord: line {l}: {})", recorded.message),
            None => String::new(),
        };
        problems.push(format!("verdict {ours:?}, expected {want:?}{theirs}"));
    }
    let line_count = u32::try_from(source.lines().count()).unwrap_or(u32::MAX);
    for d in &diags {
        let shown = d.to_string();
        let kind = if d.is_error() { "error" } else { "warning" };
        let prefix = format!("{name}:{}:{}: {kind}: ", d.span.line, d.span.col);
        if !shown.starts_with(&prefix) || d.span.line == 0 || d.span.line > line_count.max(1) {
            problems.push(format!("diagnostic does not name FILE:LINE:COL: {shown}"));
        }
        if !expected.iter().any(|e| matches(e, d)) {
            problems.push(format!("unexpected diagnostic: {shown}"));
        }
    }
    for e in &expected {
        if !diags.iter().any(|d| matches(e, d)) {
            problems.push(format!(
                "missing {:?} at {}:{} containing {:?}",
                e.severity, e.line, e.col, e.text
            ));
        }
    }
    if want == Verdict::Invalid && !expected.iter().any(|e| e.severity == Severity::Error) {
        problems.push("an invalid file must list its errors with '# expect: error'".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{name}:\n    {}", problems.join("\n    ")))
    }
}

#[test]
fn corpus_verdicts_match_ldirectord() {
    let env = environment();
    let files = corpus_files();
    assert!(files.len() >= 60, "corpus has only {} files", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| check_file(f, &env).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus files disagree:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// The live oracle: the real ldirectord must still give every recorded
/// verdict (run by CI, as root, with the Debian package installed by
/// tests/setup/install.sh). Fails, never skips, when that is not possible.
#[test]
fn recorded_verdicts_match_live_ldirectord() {
    let script = corpus_dir().join("regen-verdicts.sh");
    let output = std::process::Command::new(&script)
        .arg("--check")
        .output()
        .expect("run tests/config/regen-verdicts.sh");
    assert!(
        output.status.success(),
        "tests/config/regen-verdicts.sh --check failed (it needs root and the ldirectord package; tests/setup/install.sh installs it):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every example in conf/ passes `ldirectord --check` (with the system's
/// name resolution: the examples use addresses only).
#[test]
fn every_example_config_passes_check() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&conf)
        .expect("conf/ exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cf"))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("http-dr.cf")),
        "conf/http-dr.cf (used by README) is missing"
    );
    let mut failures = Vec::new();
    for f in &files {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ldirectord"))
            .arg("--check")
            .arg(f)
            .output()
            .expect("run ldirectord --check");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(0) || !stdout.contains(": OK: ") {
            failures.push(format!(
                "{}: exit {:?}\n{stdout}{stderr}",
                f.display(),
                output.status.code()
            ));
        }
        // The README's and the examples' promise: no error lines at all.
        if stderr.contains(": error: ") {
            failures.push(format!(
                "{}: error lines on success:\n{stderr}",
                f.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Invalid input never panics the parser: mutations of every corpus file
/// (the tokens the grammar cares about, inserted, deleted and flipped at
/// random) and plain random bytes. A small xorshift generator keeps the
/// test dependency-free and reproducible; the seed is in the failure.
#[test]
fn mutated_and_random_input_never_panics() {
    const TOKENS: &[&[u8]] = &[
        b"\n",
        b"\t",
        b"    ",
        b"#",
        b"\"",
        b"=",
        b":",
        b"::",
        b"->",
        b"[",
        b"]",
        b",",
        b" ",
        b"0",
        b"65536",
        b"99999999999999999999999",
        b"virtual=",
        b"virtual6=",
        b"real=",
        b"real6=",
        b"\treal=",
        b"gate",
        b"l:",
        b"u:",
        b"\r",
        b"\xff",
        b"\xc3\xa9",
        b"localhost",
        b"[::1]",
        b"1.2.3.4",
        b"fallback=",
        b"checktype=",
        b"protocol=fwm",
    ];
    let env = environment();
    let seeds: Vec<Vec<u8>> = corpus_files()
        .iter()
        .map(|f| std::fs::read(f).expect("read corpus file"))
        .collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..6000u32 {
        let mut input = if round % 10 == 9 {
            let len = (next() % 512) as usize;
            (0..len).map(|_| next() as u8).collect()
        } else {
            seeds[(next() % seeds.len() as u64) as usize].clone()
        };
        for _ in 0..1 + next() % 8 {
            let at = if input.is_empty() {
                0
            } else {
                (next() % input.len() as u64) as usize
            };
            match next() % 3 {
                0 => {
                    let token = TOKENS[(next() % TOKENS.len() as u64) as usize];
                    input.splice(at..at, token.iter().copied());
                }
                1 if !input.is_empty() => {
                    let end = (at + 1 + (next() % 16) as usize).min(input.len());
                    input.drain(at..end);
                }
                _ if !input.is_empty() => input[at] = next() as u8,
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(&input).into_owned();
        let result = std::panic::catch_unwind(|| {
            let _ = config::parse_str("fuzz.cf", &text, &env);
        });
        assert!(
            result.is_ok(),
            "parser panicked in round {round} on input {text:?}"
        );
    }
}
