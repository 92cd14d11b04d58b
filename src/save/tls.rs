//! The rustls client configuration etcdctl's TLS flags describe: the CA
//! bundle, an optional client certificate, and (only behind
//! `--insecure-skip-tls-verify`) a verifier that accepts any server
//! certificate but still checks the handshake signatures.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::error::SaveError;
use super::options::TlsOptions;

/// Where the system's CA bundle is looked for when `--cacert` is not given
/// (after `$SSL_CERT_FILE`).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

fn read(path: &Path) -> Result<Vec<u8>, SaveError> {
    std::fs::read(path).map_err(|e| {
        SaveError::TlsFiles(format!(
            "open {}: {}",
            path.display(),
            crate::go::errno::text(&e)
        ))
    })
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, SaveError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SaveError::TlsFiles(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(SaveError::TlsFiles(format!(
            "{}: no PEM certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn roots(ca: Option<&Path>) -> Result<RootCertStore, SaveError> {
    let path = match ca {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("SSL_CERT_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                SYSTEM_BUNDLES
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_file())
            })
            .ok_or_else(|| {
                SaveError::TlsFiles("no CA bundle: give a CA file (no system bundle found)".into())
            })?,
    };
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs(&path)?);
    if added == 0 {
        return Err(SaveError::TlsFiles(format!(
            "{}: no usable CA certificate",
            path.display()
        )));
    }
    Ok(store)
}

/// Builds the client configuration (ALPN `h2`, TLS 1.2 and 1.3, ring).
pub fn client_config(opts: &TlsOptions) -> Result<ClientConfig, SaveError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_auth = match (&opts.cert_file, &opts.key_file) {
        (Some(c), Some(k)) => {
            let chain = certs(c)?;
            let key = PrivateKeyDer::from_pem_slice(&read(k)?)
                .map_err(|e| SaveError::TlsFiles(format!("{}: {e}", k.display())))?;
            Some((chain, key))
        }
        (None, None) => None,
        (c, k) => {
            let show = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
            return Err(SaveError::TlsFiles(format!(
                "KeyFile and CertFile must both be present[key: {}, cert: {}]",
                show(k).unwrap_or_default(),
                show(c).unwrap_or_default()
            )));
        }
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SaveError::TlsFiles(format!("TLS setup: {e}")))?;
    let builder = if opts.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider)))
    } else {
        builder.with_root_certificates(roots(opts.ca_file.as_deref())?)
    };
    let mut cfg = match client_auth {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| SaveError::TlsFiles(format!("client certificate and key: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

/// The name the server's certificate must carry: the endpoint's host (an
/// IP address must be in the certificate's IP SANs, as Go requires).
pub fn server_name(host: &str) -> Result<ServerName<'static>, SaveError> {
    ServerName::try_from(host.to_string())
        .map_err(|e| SaveError::Options(format!("invalid host name {host:?} for TLS: {e}")))
}

/// `--insecure-skip-tls-verify`: any certificate is accepted, but the
/// server must still prove it holds the certificate's key.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ca_reads_like_go() {
        let o = TlsOptions {
            ca_file: Some("/definitely/not/here.pem".into()),
            ..TlsOptions::default()
        };
        let e = client_config(&o).expect_err("missing file");
        assert_eq!(
            e.to_string(),
            "open /definitely/not/here.pem: no such file or directory"
        );
    }

    #[test]
    fn cert_without_key_reads_like_etcdctl() {
        let o = TlsOptions {
            cert_file: Some("/tmp/nonexist".into()),
            ..TlsOptions::default()
        };
        let e = client_config(&o).expect_err("no key");
        assert_eq!(
            e.to_string(),
            "KeyFile and CertFile must both be present[key: , cert: /tmp/nonexist]"
        );
    }

    #[test]
    fn skip_verify_needs_no_bundle() {
        let o = TlsOptions {
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        let cfg = client_config(&o).expect("no files needed");
        assert_eq!(cfg.alpn_protocols, vec![b"h2".to_vec()]);
    }
}
