// SPDX-License-Identifier: GPL-2.0-or-later
//! Adding, removing and looking up the VIP with rtnetlink.
//!
//! Every operation works on the network namespace of the calling thread at
//! the time [`VipHandle::new`] opened its netlink socket. Operations are
//! idempotent the way keepalived's are: adding an address that is already
//! there, or removing one that is already gone, is success (reported as
//! [`Change::Unchanged`]). Only the one address asked for is ever touched.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use futures::TryStreamExt;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};
use netlink_packet_route::AddressFamily;
use rtnetlink::{AddressMessageBuilder, Handle};
use tokio::task::JoinHandle;

use super::error::NetError;

/// The capability rtnetlink address changes need.
pub(crate) const CAP_NET_ADMIN: &str = "CAP_NET_ADMIN";

/// Longest interface name (and address label) the kernel accepts: IFNAMSIZ
/// minus the terminating NUL.
const MAX_IFNAME_LEN: usize = 15;

/// A VIP: an address and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VipAddr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl VipAddr {
    /// A VIP with an explicit prefix length, validated.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, NetError> {
        validate_vip(addr, &addr.to_string())?;
        if prefix > max_prefix(addr) {
            return Err(NetError::InvalidAddress {
                input: format!("{addr}/{prefix}"),
                reason: format!("prefix length must be at most {}", max_prefix(addr)),
            });
        }
        Ok(VipAddr { addr, prefix })
    }

    /// A host VIP (/32 or /128): the default when no prefix is given, as
    /// keepalived does, so that adding a VIP never adds a subnet route the
    /// operator did not ask for.
    pub fn host(addr: IpAddr) -> Result<Self, NetError> {
        VipAddr::new(addr, max_prefix(addr))
    }
}

impl fmt::Display for VipAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for VipAddr {
    type Err = NetError;

    /// Parses `ADDR[/PREFIX]`; without a prefix the VIP is a host address.
    fn from_str(input: &str) -> Result<Self, NetError> {
        let (addr, prefix) = parse_addr_prefix(input)?;
        match prefix {
            Some(prefix) => VipAddr::new(addr, prefix),
            None => VipAddr::host(addr),
        }
    }
}

/// The longest prefix of the address family: 32 or 128.
pub fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Parses `ADDR[/PREFIX]`, keeping whether a prefix was given (a delete
/// without a prefix removes the address whatever its prefix).
pub fn parse_addr_prefix(input: &str) -> Result<(IpAddr, Option<u8>), NetError> {
    let invalid = |reason: &str| NetError::InvalidAddress {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let (addr_text, prefix_text) = match input.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (input, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| invalid("not an IPv4 or IPv6 address"))?;
    validate_vip(addr, input)?;
    let prefix = match prefix_text {
        None => None,
        Some(text) => {
            let prefix: u8 = text
                .parse()
                .map_err(|_| invalid("the prefix length is not a number"))?;
            if prefix > max_prefix(addr) {
                return Err(invalid(&format!(
                    "prefix length must be at most {}",
                    max_prefix(addr)
                )));
            }
            Some(prefix)
        }
    };
    Ok((addr, prefix))
}

/// Rejects addresses that can never be a VIP.
fn validate_vip(addr: IpAddr, input: &str) -> Result<(), NetError> {
    let reason = if addr.is_unspecified() {
        Some("the unspecified address cannot be a VIP")
    } else if addr.is_multicast() {
        Some("a multicast address cannot be a VIP")
    } else if addr == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) {
        Some("the broadcast address cannot be a VIP")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NetError::InvalidAddress {
            input: input.to_string(),
            reason: reason.to_string(),
        }),
        None => Ok(()),
    }
}

/// What an idempotent operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The address was added or removed.
    Changed,
    /// The address was already in the requested state; nothing was sent.
    Unchanged,
}

/// Options for [`VipHandle::add`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddOptions {
    /// IPv4 address label (`eth0:vip`). A label that does not start with the
    /// interface name gets `IFACE:` in front, as IPaddr2's `iflabel` does.
    pub label: Option<String>,
    /// Add the address even when another interface of the namespace already
    /// carries it.
    pub force: bool,
}

/// A network interface, as far as VIP management cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The Ethernet address, if the link is Ethernet.
    pub mac: Option<[u8; 6]>,
    pub is_up: bool,
    pub is_loopback: bool,
    pub no_arp: bool,
}

impl Link {
    fn from_message(message: &LinkMessage) -> Link {
        let name = message
            .attributes
            .iter()
            .find_map(|attribute| match attribute {
                LinkAttribute::IfName(name) => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let is_ethernet = message.header.link_layer_type == LinkLayerType::Ether;
        let mac = message
            .attributes
            .iter()
            .find_map(|attribute| match attribute {
                LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
                _ => None,
            })
            .filter(|_| is_ethernet);
        let flags = message.header.flags;
        Link {
            index: message.header.index,
            name,
            mac,
            is_up: flags.contains(LinkFlags::Up),
            is_loopback: flags.contains(LinkFlags::Loopback),
            no_arp: flags.contains(LinkFlags::Noarp),
        }
    }
}

/// An address configured on some interface of the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedAddress {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub label: Option<String>,
    /// The attributes that identify the address to the kernel, kept so a
    /// delete names exactly this address and nothing else.
    identity: Vec<AddressAttribute>,
    family: AddressFamily,
}

impl AssignedAddress {
    fn from_message(message: &AddressMessage) -> Option<AssignedAddress> {
        let mut local = None;
        let mut address = None;
        let mut label = None;
        let mut identity = Vec::new();
        for attribute in &message.attributes {
            match attribute {
                AddressAttribute::Local(ip) => {
                    local = Some(*ip);
                    identity.push(attribute.clone());
                }
                AddressAttribute::Address(ip) => {
                    address = Some(*ip);
                    identity.push(attribute.clone());
                }
                AddressAttribute::Label(text) => label = Some(text.clone()),
                _ => {}
            }
        }
        // As in iproute2: IFA_LOCAL is the interface's own address; IFA_ADDRESS
        // is the peer on point-to-point links, and the only one for most IPv6.
        let addr = local.or(address)?;
        Some(AssignedAddress {
            index: message.header.index,
            addr,
            prefix: message.header.prefix_len,
            label,
            identity,
            family: message.header.family,
        })
    }
}

/// An rtnetlink connection in the caller's network namespace.
///
/// Dropping the handle stops its connection task.
pub struct VipHandle {
    handle: Handle,
    connection: JoinHandle<()>,
}

impl Drop for VipHandle {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl VipHandle {
    /// Opens the netlink socket (in the calling thread's network namespace)
    /// and spawns its connection task on the current tokio runtime.
    pub fn new() -> Result<VipHandle, NetError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetError::Netlink {
                operation: "open an rtnetlink socket".to_string(),
                source,
            })?;
        let connection = tokio::spawn(connection);
        Ok(VipHandle { handle, connection })
    }

    /// Looks an interface up by name.
    pub async fn link(&self, iface: &str) -> Result<Link, NetError> {
        if iface.is_empty()
            || iface.len() > MAX_IFNAME_LEN
            || iface.contains(['/', ':'])
            || iface.chars().any(char::is_whitespace)
        {
            // The kernel could never have created it: say so rather than
            // pass on EINVAL/ERANGE.
            return Err(NetError::InterfaceNotFound {
                iface: iface.to_string(),
            });
        }
        let mut links = self.handle.link().get().match_name(iface).execute();
        match links.try_next().await {
            Ok(Some(message)) => Ok(Link::from_message(&message)),
            Ok(None) => Err(NetError::InterfaceNotFound {
                iface: iface.to_string(),
            }),
            Err(rtnetlink::Error::NetlinkError(message))
                if message.raw_code().abs() == libc::ENODEV =>
            {
                Err(NetError::InterfaceNotFound {
                    iface: iface.to_string(),
                })
            }
            Err(error) => Err(rtnetlink_error(format!("look up interface {iface}"), error)),
        }
    }

    /// Looks an interface up by index.
    pub async fn link_by_index(&self, index: u32) -> Result<Link, NetError> {
        let mut links = self.handle.link().get().match_index(index).execute();
        match links.try_next().await {
            Ok(Some(message)) => Ok(Link::from_message(&message)),
            Ok(None) => Err(NetError::InterfaceNotFound {
                iface: format!("#{index}"),
            }),
            Err(error) => Err(rtnetlink_error(
                format!("look up interface #{index}"),
                error,
            )),
        }
    }

    /// The name of the interface with this index, for messages.
    pub(crate) async fn link_name(&self, index: u32) -> String {
        self.link_by_index(index)
            .await
            .map(|link| link.name)
            .unwrap_or_else(|_| format!("#{index}"))
    }

    /// Every address of every interface in the namespace.
    pub async fn addresses(&self) -> Result<Vec<AssignedAddress>, NetError> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|error| rtnetlink_error("list addresses", error))?;
        Ok(messages
            .iter()
            .filter_map(AssignedAddress::from_message)
            .collect())
    }

    /// The addresses of one interface.
    pub async fn addresses_on(&self, iface: &str) -> Result<Vec<AssignedAddress>, NetError> {
        let link = self.link(iface).await?;
        Ok(self
            .addresses()
            .await?
            .into_iter()
            .filter(|assigned| assigned.index == link.index)
            .collect())
    }

    /// Whether `addr` is configured on `iface` (with any prefix length).
    pub async fn is_present(&self, iface: &str, addr: IpAddr) -> Result<bool, NetError> {
        Ok(self.find_on(iface, addr).await?.1.is_some())
    }

    /// The interface, and the address on it if present.
    async fn find_on(
        &self,
        iface: &str,
        addr: IpAddr,
    ) -> Result<(Link, Option<AssignedAddress>), NetError> {
        let link = self.link(iface).await?;
        let found = self
            .addresses()
            .await?
            .into_iter()
            .find(|assigned| assigned.index == link.index && assigned.addr == addr);
        Ok((link, found))
    }

    /// Adds `vip` to `iface`. Success without change if it is already there
    /// with the same prefix; an error, and no change, if it is there with
    /// another prefix or (without `force`) on another interface.
    pub async fn add(
        &self,
        iface: &str,
        vip: VipAddr,
        options: &AddOptions,
    ) -> Result<Change, NetError> {
        let label = options
            .label
            .as_deref()
            .map(|label| full_label(iface, vip.addr, label))
            .transpose()?;
        let link = self.link(iface).await?;
        let addresses = self.addresses().await?;
        if let Some(present) = addresses
            .iter()
            .find(|assigned| assigned.index == link.index && assigned.addr == vip.addr)
        {
            if present.prefix == vip.prefix {
                return Ok(Change::Unchanged);
            }
            return Err(NetError::PrefixMismatch {
                addr: vip.addr,
                iface: iface.to_string(),
                present: present.prefix,
                requested: vip.prefix,
            });
        }
        if !options.force {
            if let Some(other) = addresses.iter().find(|assigned| assigned.addr == vip.addr) {
                return Err(NetError::AddressInUse {
                    addr: vip.addr,
                    iface: iface.to_string(),
                    other_iface: self.link_name(other.index).await,
                });
            }
        }

        let mut message = match vip.addr {
            IpAddr::V4(addr) => AddressMessageBuilder::<std::net::Ipv4Addr>::new()
                .index(link.index)
                .address(addr, vip.prefix)
                .build(),
            IpAddr::V6(addr) => AddressMessageBuilder::<std::net::Ipv6Addr>::new()
                .index(link.index)
                .address(addr, vip.prefix)
                .build(),
        };
        if let Some(label) = label {
            message.attributes.push(AddressAttribute::Label(label));
        }
        if vip.addr.is_ipv6() {
            // IFA_F_NODAD: a VIP moves between directors on failover, so it
            // must be usable the moment it is added. With duplicate address
            // detection the address stays "tentative" for about a second
            // (dad_transmits x retrans_time): the kernel neither answers
            // neighbour solicitations for it nor lets anyone bind to it, so
            // the takeover would stall. Worse, if the old holder has not let
            // go yet, DAD marks it "dadfailed" and it never becomes usable.
            // Exclusive ownership is the cluster manager's job (fencing), not
            // DAD's; keepalived adds its VIPs with IFA_F_NODAD for the same
            // reason. The flag goes in both the header byte and IFA_FLAGS,
            // like iproute2's `nodad`.
            message.header.flags = AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }

        let operation = format!("add {vip} to {iface}");
        let mut request = self.handle.address().add(0, vip.addr, vip.prefix);
        *request.message_mut() = message;
        match request.execute().await {
            Ok(()) => Ok(Change::Changed),
            // Someone else added it between our dump and our request.
            Err(rtnetlink::Error::NetlinkError(message))
                if message.raw_code().abs() == libc::EEXIST =>
            {
                Ok(Change::Unchanged)
            }
            Err(error) => Err(rtnetlink_error(operation, error)),
        }
    }

    /// Removes `addr` from `iface`. Success without change if it is not
    /// there. With `prefix`, only an address of that prefix length is
    /// removed: one with another prefix is an error, and stays.
    pub async fn del(
        &self,
        iface: &str,
        addr: IpAddr,
        prefix: Option<u8>,
    ) -> Result<Change, NetError> {
        let (link, present) = self.find_on(iface, addr).await?;
        let Some(present) = present else {
            return Ok(Change::Unchanged);
        };
        if let Some(requested) = prefix {
            if requested != present.prefix {
                return Err(NetError::PrefixMismatch {
                    addr,
                    iface: iface.to_string(),
                    present: present.prefix,
                    requested,
                });
            }
        }
        let mut message = AddressMessage::default();
        message.header.family = present.family;
        message.header.prefix_len = present.prefix;
        message.header.index = link.index;
        message.attributes = present.identity.clone();

        let operation = format!("remove {}/{} from {iface}", addr, present.prefix);
        match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(Change::Changed),
            // Gone between our dump and our request.
            Err(rtnetlink::Error::NetlinkError(message))
                if message.raw_code().abs() == libc::EADDRNOTAVAIL =>
            {
                Ok(Change::Unchanged)
            }
            Err(error) => Err(rtnetlink_error(operation, error)),
        }
    }
}

/// The label as the kernel will store it: `IFACE:LABEL` unless it already
/// starts with the interface name (iproute2 refuses labels that do not).
fn full_label(iface: &str, addr: IpAddr, label: &str) -> Result<String, NetError> {
    let invalid = |reason: &str| NetError::InvalidLabel {
        label: label.to_string(),
        reason: reason.to_string(),
    };
    if addr.is_ipv6() {
        return Err(invalid("address labels exist for IPv4 addresses only"));
    }
    if label.is_empty() {
        return Err(invalid("the label is empty"));
    }
    if !label.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            "a label may contain printable ASCII characters only",
        ));
    }
    let full = if label.starts_with(iface) {
        label.to_string()
    } else {
        format!("{iface}:{label}")
    };
    if full.len() > MAX_IFNAME_LEN {
        return Err(NetError::InvalidLabel {
            label: full,
            reason: format!(
                "a label is at most {MAX_IFNAME_LEN} characters, interface name included"
            ),
        });
    }
    Ok(full)
}

/// Maps an rtnetlink failure to a [`NetError`]; EPERM means CAP_NET_ADMIN.
fn rtnetlink_error(operation: impl Into<String>, error: rtnetlink::Error) -> NetError {
    match error {
        rtnetlink::Error::NetlinkError(message) => {
            NetError::from_os(operation, CAP_NET_ADMIN, message.to_io())
        }
        other => NetError::Rtnetlink {
            operation: operation.into(),
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_address_with_and_without_prefix() {
        let vip: VipAddr = "203.0.113.10/24".parse().unwrap();
        assert_eq!(vip.addr, "203.0.113.10".parse::<IpAddr>().unwrap());
        assert_eq!(vip.prefix, 24);
        assert_eq!("203.0.113.10".parse::<VipAddr>().unwrap().prefix, 32);
        assert_eq!("2001:db8::10".parse::<VipAddr>().unwrap().prefix, 128);
        assert_eq!(
            "2001:db8::10/64".parse::<VipAddr>().unwrap().to_string(),
            "2001:db8::10/64"
        );
        assert_eq!(
            parse_addr_prefix("198.51.100.1").unwrap(),
            ("198.51.100.1".parse().unwrap(), None)
        );
    }

    #[test]
    fn rejects_what_cannot_be_a_vip() {
        for bad in [
            "203.0.113.10/33",
            "2001:db8::1/129",
            "203.0.113.10/x",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "eth0",
            "",
        ] {
            let error = bad.parse::<VipAddr>().unwrap_err();
            assert!(
                matches!(error, NetError::InvalidAddress { .. }),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn labels_get_the_interface_prefix_like_iflabel() {
        let v4: IpAddr = "203.0.113.10".parse().unwrap();
        assert_eq!(full_label("eth0", v4, "web").unwrap(), "eth0:web");
        assert_eq!(full_label("eth0", v4, "eth0:web").unwrap(), "eth0:web");
        assert!(full_label("eth0", v4, "averyverylonglabel").is_err());
        assert!(full_label("eth0", v4, "a b").is_err());
        assert!(full_label("eth0", "2001:db8::1".parse().unwrap(), "web").is_err());
    }
}
