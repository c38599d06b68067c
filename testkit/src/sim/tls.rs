//! The simulator's TLS: a generated CA and a server certificate for 127.0.0.1 and localhost, or
//! a given certificate chain and key.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::SimError;

/// The server config and the PEM a client should trust.
pub(crate) fn server_config(
    cert: Option<&(PathBuf, PathBuf)>,
    listen: IpAddr,
) -> Result<(rustls::ServerConfig, String), SimError> {
    let (chain, key, trust_pem) = match cert {
        Some((cert, key)) => load(cert, key)?,
        None => generate(listen)?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| SimError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, trust_pem))
}

type Material = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String);

fn generate(listen: IpAddr) -> Result<Material, SimError> {
    let err = |e: rcgen::Error| SimError::Tls(e.to_string());
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sdash-sim test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !listen.is_unspecified() && !listen.is_loopback() {
        names.push(listen.to_string());
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sdash-sim");
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &*ca).map_err(err)?;
    let key_der = PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        key.serialize_der(),
    ));
    Ok((
        vec![cert.der().clone(), ca.der().clone()],
        key_der,
        ca.pem(),
    ))
}

fn load(cert: &PathBuf, key: &PathBuf) -> Result<Material, SimError> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|source| SimError::Write {
            path: p.clone(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SimError::Tls(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(SimError::Tls(format!("{}: no certificate", cert.display())));
    }
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| SimError::Tls(format!("{}: {e}", key.display())))?
        .ok_or_else(|| SimError::Tls(format!("{}: no private key", key.display())))?;
    Ok((
        chain,
        key_der,
        String::from_utf8_lossy(&cert_pem).into_owned(),
    ))
}
