// SPDX-License-Identifier: GPL-2.0-or-later
//! OpenLDAP's slapd with an mdb database (loaded with slapadd) serving
//! `dc=ldirector,dc=test`, on ldap:// and ldaps:// (self-signed
//! certificate), IPv4 and ::1, in the foreground (`-d 0`).

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::{free_port_both, require_binary, self_signed_cert, v6, Daemon, TempDir};

pub const BINARY: &str = "/usr/sbin/slapd";
pub const SLAPADD: &str = "/usr/sbin/slapadd";
pub const SUFFIX: &str = "dc=ldirector,dc=test";
pub const HEALTH_DN: &str = "ou=health,dc=ldirector,dc=test";
pub const ADMIN_DN: &str = "cn=admin,dc=ldirector,dc=test";
pub const ADMIN_PASSWORD: &str = "pw4admin";

pub struct Slapd {
    pub daemon: Daemon,
    /// ldap:// on IPv4 then IPv6.
    pub ldap: [SocketAddr; 2],
    /// ldaps:// on IPv4 then IPv6.
    pub ldaps: [SocketAddr; 2],
}

pub fn start(ip: IpAddr) -> Slapd {
    let dir = TempDir::new("slapd");
    let (cert, key) = self_signed_cert(dir.path(), "ldap.ldirector.test", ip);
    let db = dir.join("db");
    std::fs::create_dir(&db).expect("mkdir db");
    let conf = format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         pidfile {pid}\n\
         TLSCertificateFile {cert}\n\
         TLSCertificateKeyFile {key}\n\
         database mdb\n\
         maxsize 10485760\n\
         suffix \"{SUFFIX}\"\n\
         rootdn \"{ADMIN_DN}\"\n\
         rootpw {ADMIN_PASSWORD}\n\
         directory {db}\n",
        pid = dir.join("slapd.pid").display(),
        cert = cert.display(),
        key = key.display(),
        db = db.display(),
    );
    let conf_path = dir.join("slapd.conf");
    std::fs::write(&conf_path, conf).expect("write slapd.conf");
    let ldif = dir.join("data.ldif");
    std::fs::write(
        &ldif,
        format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n\
             o: ldirector tests\ndc: ldirector\n\n\
             dn: {HEALTH_DN}\nobjectClass: organizationalUnit\nou: health\n"
        ),
    )
    .expect("write ldif");
    require_binary(SLAPADD.as_ref());
    let loaded = Command::new(SLAPADD)
        .arg("-f")
        .arg(&conf_path)
        .arg("-l")
        .arg(&ldif)
        .output()
        .expect("run slapadd");
    assert!(
        loaded.status.success(),
        "slapadd failed: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );

    let [ldap_port, ldaps_port] = [(); 2].map(|()| free_port_both(ip));
    let urls = format!(
        "ldap://{ip}:{ldap_port}/ ldap://[::1]:{ldap_port}/ \
         ldaps://{ip}:{ldaps_port}/ ldaps://[::1]:{ldaps_port}/"
    );
    let mut command = Command::new(BINARY);
    command
        .args(["-d", "0", "-f"])
        .arg(&conf_path)
        .arg("-h")
        .arg(urls);
    let mut daemon = Daemon::spawn("slapd", command, dir);
    let ldap = [
        SocketAddr::new(ip, ldap_port),
        SocketAddr::new(v6(), ldap_port),
    ];
    let ldaps = [
        SocketAddr::new(ip, ldaps_port),
        SocketAddr::new(v6(), ldaps_port),
    ];
    for addr in ldap.iter().chain(&ldaps) {
        daemon.wait_tcp(*addr);
    }
    Slapd {
        daemon,
        ldap,
        ldaps,
    }
}
