// SPDX-License-Identifier: GPL-2.0-or-later
//! `ldirectord`: see [`ldirector::cli`].
fn main() {
    std::process::exit(ldirector::cli::main());
}
