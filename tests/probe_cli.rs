// SPDX-License-Identifier: GPL-2.0-or-later
//! End to end: `ldirectord --probe CONFIG [--json]` (the real binary)
//! against a real nginx and dnsmasq, as an operator runs it before
//! deploying a configuration. No root or IPVS involved.
//!
//! Addresses: 127.0.3.120-139.

#[path = "support_checks/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{ip, start_dnsmasq, start_nginx};

fn probe(config: &Path, json: bool) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ldirectord"));
    command.arg("--probe").arg(config);
    if json {
        command.arg("--json");
    }
    let output = command.output().expect("run ldirectord --probe");
    (
        output.status.code().expect("exit code, not a signal"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn json_rows_for_every_virtual_and_real() {
    let nginx = start_nginx(ip(120));
    let dns = start_dnsmasq(ip(121));
    let closed = support::free_port(ip(122));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("ldirectord.cf");
    std::fs::write(
        &config,
        format!(
            "checktimeout=2\n\
             virtual=127.0.3.123:80\n\
             \treal={http} gate\n\
             \treal={http} masq 2 \"/down\", \"maintenance\"\n\
             \treal=127.0.3.122:{closed} gate\n\
             \tservice=http\n\
             \treceive=\"alive\"\n\
             virtual6=[::1]:80\n\
             \treal6={http6} gate\n\
             \tservice=http\n\
             virtual=127.0.3.124:53\n\
             \treal={dns} gate\n\
             \tservice=dns\n\
             \trequest=\"www.example.test\"\n\
             \treceive=\"10.1.2.3\"\n\
             virtual=42\n\
             \treal=127.0.3.125 gate\n\
             \tchecktype=on\n",
            http = nginx.http,
            http6 = nginx.http6,
            dns = dns.addr,
        ),
    )
    .expect("write config");

    let (code, stdout, stderr) = probe(&config, true);
    assert_eq!(
        code, 1,
        "some reals are down\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let rows: Vec<Value> = serde_json::from_str(&stdout).expect("a JSON array");
    let summary: Vec<(String, String, bool, String)> = rows
        .iter()
        .map(|row| {
            assert!(row["latency_ms"].as_f64().expect("latency_ms is a number") >= 0.0);
            (
                row["virtual"].as_str().expect("virtual").to_owned(),
                row["real"].as_str().expect("real").to_owned(),
                row["up"].as_bool().expect("up"),
                row["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect();
    let s = |text: &str| text.to_owned();
    assert_eq!(
        summary,
        [
            (s("127.0.3.123:80"), nginx.http.to_string(), true, s("ok")),
            (
                s("127.0.3.123:80"),
                nginx.http.to_string(),
                false,
                s("HTTP 503")
            ),
            (
                s("127.0.3.123:80"),
                format!("127.0.3.122:{closed}"),
                false,
                s("connection refused")
            ),
            (s("[::1]:80"), nginx.http6.to_string(), true, s("ok")),
            (s("127.0.3.124:53"), dns.addr.to_string(), true, s("ok")),
            (s("42"), s("127.0.3.125:0"), true, s("ok")),
        ]
    );
}

#[test]
fn table_and_exit_zero_when_all_up() {
    let nginx = start_nginx(ip(126));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("up.cf");
    std::fs::write(
        &config,
        format!(
            "virtual=127.0.3.127:80\n\treal={} gate\n\tservice=http\n\treceive=\"HTTP/1.1 200 OK\"\n",
            nginx.http
        ),
    )
    .expect("write config");
    let (code, stdout, stderr) = probe(&config, false);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("VIRTUAL"), "{stdout}");
    assert!(lines[1].starts_with("127.0.3.127:80"), "{stdout}");
    assert!(lines[1].contains(" up "), "{stdout}");
    assert!(lines[1].contains("negotiate:http"), "{stdout}");
}

#[test]
fn config_error_exits_2_with_the_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bad.cf");
    std::fs::write(&config, "virtual=127.0.3.128:80\n\treal=127.0.3.129:80\n").expect("write");
    let (code, stdout, stderr) = probe(&config, true);
    assert_eq!(code, 2, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("bad.cf:2:"), "{stderr}");
}

#[test]
fn check_json_prints_the_parsed_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("ldirectord.cf");
    std::fs::write(
        &config,
        "checktimeout=3\nvirtual=10.0.0.100:80\n\treal=10.0.0.11:80 gate 5\n\tservice=http\n",
    )
    .expect("write config");
    for args in [
        ["--check", "CONFIG", "--json"],
        ["--json", "--check", "CONFIG"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_ldirectord"))
            .args(args.map(|a| {
                if a == "CONFIG" {
                    config.as_os_str()
                } else {
                    a.as_ref()
                }
            }))
            .output()
            .expect("run ldirectord --check --json");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stdout}");
        let model: Value = serde_json::from_str(&stdout).expect("stdout is JSON");
        assert_eq!(model["global"]["checktimeout"]["value"], 3, "{model}");
        assert_eq!(
            model["global"]["checktimeout"]["span"]["line"], 1,
            "{model}"
        );
        let real = &model["virtuals"][0]["reals"][0];
        assert_eq!(real["addr"]["addr"], "10.0.0.11", "{model}");
        assert_eq!(real["forward"], "route", "{model}");
        assert_eq!(real["weight"], 5, "{model}");
    }

    // An invalid file: no JSON, the diagnostics on stderr, exit 2.
    std::fs::write(
        &config,
        "virtual=10.0.0.100:80\n\treal=10.0.0.11:80 gate\n\tchecktype=sometimes\n",
    )
    .expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_ldirectord"))
        .arg("--check")
        .arg(&config)
        .arg("--json")
        .output()
        .expect("run ldirectord --check --json");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(":3:12: error: "), "{stderr}");
}
