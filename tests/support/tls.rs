//! Certificates for TLS tests, made with rcgen: a CA, a certificate for
//! the members (server and peer, also usable as a client certificate, as
//! in the usual backup guides' `members.pem`), a client certificate, and
//! a second, unrelated CA for "wrong CA" tests. All for `localhost`,
//! `127.0.0.1` and `::1`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// The PEM files written by [`make`].
#[derive(Debug, Clone)]
pub struct Certs {
    /// The CA that signed every certificate below: `ca.pem`.
    pub ca: PathBuf,
    /// Members' certificate (server and client use): `members.pem`.
    pub members: PathBuf,
    /// Its key: `members-key.pem`.
    pub members_key: PathBuf,
    /// A client-only certificate: `client.pem`.
    pub client: PathBuf,
    /// Its key: `client-key.pem`.
    pub client_key: PathBuf,
    /// A CA that signed nothing here: `other-ca.pem`.
    pub other_ca: PathBuf,
}

impl Certs {
    /// etcd's flags for client and peer TLS with client certificates required.
    pub fn etcd_args(&self) -> Vec<String> {
        let p = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            format!("--cert-file={}", p(&self.members)),
            format!("--key-file={}", p(&self.members_key)),
            format!("--trusted-ca-file={}", p(&self.ca)),
            "--client-cert-auth".into(),
            format!("--peer-cert-file={}", p(&self.members)),
            format!("--peer-key-file={}", p(&self.members_key)),
            format!("--peer-trusted-ca-file={}", p(&self.ca)),
            "--peer-client-cert-auth".into(),
        ]
    }

    /// The guide's client flags: `--cacert=ca.pem --cert=members.pem --key=members-key.pem`.
    pub fn client_args(&self) -> Vec<String> {
        let p = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            format!("--cacert={}", p(&self.ca)),
            format!("--cert={}", p(&self.members)),
            format!("--key={}", p(&self.members_key)),
        ]
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("CA key")).expect("CA cert")
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    usages: Vec<ExtendedKeyUsagePurpose>,
) -> (String, String) {
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    p.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    p.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = usages;
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// Writes a fresh self-signed CA certificate (PEM) to `path`.
pub fn write_ca(path: &Path, name: &str) {
    std::fs::write(path, ca(name).pem())
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Writes a fresh set of certificates into `dir`.
pub fn make(dir: &Path) -> Certs {
    let ca1 = ca("etcdsnap test CA");
    let ca2 = ca("unrelated test CA");
    let (members, members_key) = leaf(
        &ca1,
        "etcd-member",
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    );
    let (client, client_key) = leaf(
        &ca1,
        "etcdsnap-client",
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    );
    let certs = Certs {
        ca: dir.join("ca.pem"),
        members: dir.join("members.pem"),
        members_key: dir.join("members-key.pem"),
        client: dir.join("client.pem"),
        client_key: dir.join("client-key.pem"),
        other_ca: dir.join("other-ca.pem"),
    };
    for (path, text) in [
        (&certs.ca, ca1.pem()),
        (&certs.members, members),
        (&certs.members_key, members_key),
        (&certs.client, client),
        (&certs.client_key, client_key),
        (&certs.other_ca, ca2.pem()),
    ] {
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    certs
}
