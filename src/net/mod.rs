// SPDX-License-Identifier: GPL-2.0-or-later
//! The virtual IP: rtnetlink address management, gratuitous ARP and unsolicited NA.
