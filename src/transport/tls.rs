//! The rustls client configuration: the system CA bundle by default, an extra PEM bundle
//! (`--ca-cert-file`), no verification at all (`--tls-skip-verify=true`, loudly warned), and a
//! client certificate for mTLS (`--client-cert`/`--client-key`).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// TLS options as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub ca_cert_file: Option<std::path::PathBuf>,
    pub skip_verify: bool,
    pub client_cert: Option<std::path::PathBuf>,
    pub client_key: Option<std::path::PathBuf>,
    /// Leave out the system CA bundle (tests, to prove a private CA is what made it pass).
    pub no_system_roots: bool,
}

/// Why the TLS options could not be turned into a configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("--ca-cert-file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("--client-cert {path}: {reason}")]
    ClientCert { path: String, reason: String },
    #[error("--client-key {path}: {reason}")]
    ClientKey { path: String, reason: String },
    #[error("--client-cert and --client-key go together")]
    ClientPair,
    #[error("client certificate and key do not fit together: {0}")]
    ClientIdentity(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client configuration.
///
/// # Errors
/// Unreadable or invalid PEM files, or a client certificate without its key.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().expect("ring supports the default versions");
    let builder = if opts.skip_verify {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    } else {
        let mut roots = RootCertStore::empty();
        if !opts.no_system_roots {
            // Unreadable system certificates are skipped; a missing bundle just means fewer roots.
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
        if let Some(path) = &opts.ca_cert_file {
            let err = |reason: String| TlsConfigError::CaFile { path: path.display().to_string(), reason };
            let certs = read_certs(path).map_err(err)?;
            for c in certs {
                roots.add(c).map_err(|e| TlsConfigError::CaFile { path: path.display().to_string(), reason: e.to_string() })?;
            }
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&opts.client_cert, &opts.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let certs = read_certs(cert).map_err(|reason| TlsConfigError::ClientCert { path: cert.display().to_string(), reason })?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| TlsConfigError::ClientKey { path: key.display().to_string(), reason: e.to_string() })?;
            builder.with_client_auth_cert(certs, key).map_err(|e| TlsConfigError::ClientIdentity(e.to_string()))?
        }
        _ => return Err(TlsConfigError::ClientPair),
    };
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> =
        CertificateDer::pem_file_iter(path).map_err(|e| e.to_string())?.collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in the file".into());
    }
    Ok(certs)
}

/// Accepts any server certificate (`--tls-skip-verify=true`); signatures are still checked so
/// the handshake itself stays well-formed.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Builds a server configuration for the embedded ACS: its certificate chain and key, and, for
/// mutual TLS, the CA that client certificates must chain to.
///
/// # Errors
/// Unreadable or invalid PEM files.
pub fn server_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let certs = read_certs(cert).map_err(|reason| TlsConfigError::ClientCert { path: cert.display().to_string(), reason })?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsConfigError::ClientKey { path: key.display().to_string(), reason: e.to_string() })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca).map_err(|reason| TlsConfigError::CaFile { path: ca.display().to_string(), reason })? {
                roots.add(c).map_err(|e| TlsConfigError::CaFile { path: ca.display().to_string(), reason: e.to_string() })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsConfigError::CaFile { path: ca.display().to_string(), reason: e.to_string() })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder.with_single_cert(certs, key).map(Arc::new).map_err(|e| TlsConfigError::ClientIdentity(e.to_string()))
}
