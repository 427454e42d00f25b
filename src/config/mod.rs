// SPDX-License-Identifier: GPL-2.0-or-later
//! The ldirectord.cf parser: lexer, nom value parsers, typed model, validation.
