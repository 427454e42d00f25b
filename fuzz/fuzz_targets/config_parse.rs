// SPDX-License-Identifier: GPL-2.0-or-later
//! The configuration parser on arbitrary bytes: no panic, no hang.
//! Names resolve offline (numeric addresses and localhost only), so the
//! fuzzer never touches DNS. Seed corpus: tests/config/*.cf and conf/*.cf.
#![no_main]

use ldirector::config::{self, OfflineEnvironment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = config::parse_str("fuzz.cf", &text, &OfflineEnvironment);
});
