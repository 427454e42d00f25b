// SPDX-License-Identifier: GPL-2.0-or-later
//! Raw captures of what the kernel sends, for the codec's unit tests
//! (`src/ipvs/tests/captures/`). A plain blocking netlink socket, so the
//! bytes are the kernel's, untouched by the client under test.
//!
//! File format (`.hex`): `#` comment lines (the ipvsadm commands that built
//! the table, the request, the kernel release), then one block of hex per
//! netlink message, blocks separated by a blank line.

use std::fmt::Write as _;
use std::path::Path;

use ldirector::ipvs::{IpvsHandle, IpvsMessage};
use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST};
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// Sends `request` and returns every reply message's bytes (header
/// included), without the final `NLMSG_DONE`. Panics on a kernel error.
pub fn raw_request(handle: &IpvsHandle, request: IpvsMessage, dump: bool) -> Vec<Vec<u8>> {
    let flags = if dump {
        NLM_F_REQUEST | NLM_F_DUMP
    } else {
        NLM_F_REQUEST
    };
    let mut message = handle.message(request, flags);
    message.header.sequence_number = 1;
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);

    let mut socket = Socket::new(NETLINK_GENERIC).expect("netlink socket");
    socket.bind_auto().expect("bind netlink socket");
    socket
        .send_to(&bytes, &SocketAddr::new(0, 0), 0)
        .expect("send to the kernel");
    let mut replies = Vec::new();
    loop {
        let (datagram, _) = socket.recv_from_full().expect("receive from the kernel");
        let mut rest = &datagram[..];
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
            let kind = u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes"));
            assert!((16..=rest.len()).contains(&len), "bad netlink length {len}");
            match kind {
                NLMSG_DONE => return replies,
                NLMSG_ERROR => {
                    let errno = i32::from_ne_bytes(rest[16..20].try_into().expect("4 bytes"));
                    assert_eq!(errno, 0, "the kernel refused the capture request");
                    return replies;
                }
                _ => replies.push(rest[..len].to_vec()),
            }
            if !dump {
                return replies;
            }
            let aligned = (len + 3) & !3;
            rest = &rest[aligned.min(rest.len())..];
        }
    }
}

/// Writes one capture file.
pub fn write_capture(dir: &Path, name: &str, comments: &[String], messages: &[Vec<u8>]) {
    assert!(
        !messages.is_empty(),
        "capture {name}: the kernel sent nothing"
    );
    std::fs::create_dir_all(dir).expect("create the capture folder");
    let mut text = String::new();
    for line in comments {
        writeln!(text, "# {line}").expect("write to a String");
    }
    for message in messages {
        text.push('\n');
        for chunk in message.chunks(16) {
            let words: Vec<String> = chunk
                .chunks(4)
                .map(|w| w.iter().map(|b| format!("{b:02x}")).collect())
                .collect();
            writeln!(text, "{}", words.join(" ")).expect("write to a String");
        }
    }
    let path = dir.join(format!("{name}.hex"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
