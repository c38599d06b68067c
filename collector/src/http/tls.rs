//! TLS for the HTTP client: the rustls configuration of a system (platform roots plus its
//! `tls.ca_file`) and the verifier that accepts any certificate, used only with an explicit
//! `tls.insecure = true`.

use std::sync::Arc;

use super::SetupError;

/// Installs the ring crypto provider for rustls once per process (reqwest is built with
/// `rustls-no-provider`). Safe to call many times.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The rustls client config for a system: the platform roots plus `tls.ca_file` (all
/// certificates in it), or no verification at all when `tls.insecure` (explicit opt-in).
pub(super) fn tls_config(
    insecure: bool,
    ca: Option<(&std::path::Path, &[u8])>,
) -> Result<rustls::ClientConfig, SetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Client(e.to_string()))?;
    if insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    // Platform roots are best effort (a missing or partly unreadable store is not fatal), and
    // read once per process: a fleet of thousands of systems must not reread them per adapter.
    static NATIVE_ROOTS: std::sync::OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>> =
        std::sync::OnceLock::new();
    for cert in NATIVE_ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs) {
        let _ = roots.add(cert.clone());
    }
    if let Some((path, pem)) = ca {
        let shown = path.display().to_string();
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(|e| SetupError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            roots.add(cert).map_err(|e| SetupError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(SetupError::CaFile {
                path: shown,
                reason: "no PEM certificate in the file".into(),
            });
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Accepts any server certificate (only with `tls.insecure = true`); signatures are still
/// checked so the handshake itself is sound.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
