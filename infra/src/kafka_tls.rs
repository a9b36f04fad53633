//! Why a broker's certificate was refused. librdkafka reports every verification failure as
//! "certificate verify failed"; a TLS handshake of our own (rustls, the same CA file) tells an
//! unknown issuer from a certificate that names another host or has expired.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// The cause of a refused certificate at `hostport` for a client trusting `ca`, or `None`
/// when the handshake succeeds or fails for another reason.
pub async fn diagnose(hostport: &str, ca: &Path) -> Option<String> {
    let host = hostport.rsplit_once(':')?.0.trim_start_matches('[').trim_end_matches(']').to_string();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).ok()? {
        roots.add(cert.ok()?).ok()?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().ok()?.with_root_certificates(roots).with_no_client_auth();
    let name = ServerName::try_from(host.clone()).ok()?;
    let stream = tokio::time::timeout(std::time::Duration::from_secs(3), tokio::net::TcpStream::connect(hostport)).await.ok()?.ok()?;
    let handshake = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream);
    let error = tokio::time::timeout(std::time::Duration::from_secs(3), handshake).await.ok()?.err()?;
    let tls = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    use rustls::CertificateError as C;
    Some(match tls {
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            format!("the broker's certificate does not name {host} (hostname mismatch): connect by a name it holds")
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!("the broker's certificate is not signed by the CA in {}", ca.display()),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => "the broker's certificate has expired".to_string(),
        _ => return None,
    })
}
