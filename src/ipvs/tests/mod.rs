// SPDX-License-Identifier: GPL-2.0-or-later
//! Codec round trips: bytes captured from Debian's kernel (6.1) in the test
//! VM are parsed, compared with a hand-built message, and re-emitted; the
//! ipvsadm command that produced each capture is noted beside it.
mod captured;
mod model;
