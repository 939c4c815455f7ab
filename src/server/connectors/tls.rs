//! TLS for HTTP connections: which certificates Baton trusts, the client certificate it shows,
//! and the words a person gets when a certificate is refused.
//!
//! Baton speaks TLS with rustls (no OpenSSL to install). It trusts the system's root
//! certificates (Debian's `ca-certificates`, read once per connection at start-up), so a company
//! CA installed on the machine is trusted as every other program trusts it, plus, per
//! connection, the CA in `tls.ca_file`. A certificate error ends the attempt for good: trying
//! again cannot make an untrusted certificate trusted, so the job fails at once with what was
//! wrong and which key to set.

use std::{error::Error as StdError, path::PathBuf};

use reqwest::{Certificate, ClientBuilder, Identity};
use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    AlertDescription, CertificateError,
};
use serde::{Deserialize, Serialize};

/// `tls = { ca_file = "…", client_cert = "…", client_key = "…", insecure = false }` in a
/// `[connections.<name>]` table; every key is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM file with the certificate(s) of a private CA, trusted besides the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A PEM file with the client certificate (and any intermediates) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// The PEM file with the client certificate's private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// Accepts any server certificate. Never silent: logged at every start and shown on the
    /// Syncs page.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

impl TlsConfig {
    /// Adds this configuration to `builder`: reads and checks the files now, so a missing or
    /// wrong file stops start-up with a message naming `connections.<name>.tls.<key>`.
    pub fn apply(&self, name: &str, mut builder: ClientBuilder) -> Result<ClientBuilder, String> {
        let key = |k: &str| format!("connections.{name}.tls.{k}");
        if let Some(path) = &self.ca_file {
            let pem = read(path, &key("ca_file"))?;
            let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    format!(
                        "{}: {} is not a PEM certificate file ({e})",
                        key("ca_file"),
                        path.display()
                    )
                })?;
            if certs.is_empty() {
                return Err(format!(
                    "{}: {} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
                    key("ca_file"),
                    path.display()
                ));
            }
            for cert in certs {
                let cert = Certificate::from_der(&cert)
                    .map_err(|e| format!("{}: {}: {e}", key("ca_file"), path.display()))?;
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&self.client_cert, &self.client_key) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(format!(
                    "{}: client_cert is set but client_key is not; mutual TLS needs both",
                    key("client_key")
                ))
            }
            (None, Some(_)) => {
                return Err(format!(
                    "{}: client_key is set but client_cert is not; mutual TLS needs both",
                    key("client_cert")
                ))
            }
            (Some(cert_path), Some(key_path)) => {
                let cert = read(cert_path, &key("client_cert"))?;
                let certs = CertificateDer::pem_slice_iter(&cert)
                    .collect::<Result<Vec<_>, _>>()
                    .ok()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| {
                        format!(
                            "{}: {} holds no PEM certificate",
                            key("client_cert"),
                            cert_path.display()
                        )
                    })?;
                let private = read(key_path, &key("client_key"))?;
                PrivateKeyDer::from_pem_slice(&private).map_err(|_| {
                    format!(
                        "{}: {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                        key("client_key"),
                        key_path.display()
                    )
                })?;
                drop(certs);
                let mut both = cert;
                both.push(b'\n');
                both.extend_from_slice(&private);
                let identity = Identity::from_pem(&both).map_err(|e| {
                    format!(
                        "{}: the certificate in {} and the key in {} cannot be used together ({e})",
                        key("client_cert"),
                        cert_path.display(),
                        key_path.display()
                    )
                })?;
                builder = builder.identity(identity);
            }
        }
        if self.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        Ok(builder)
    }
}

fn read(path: &std::path::Path, key: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{key}: cannot read {} ({e})", path.display()))
}

/// The rustls error somewhere in `err`'s chain of causes, if the failure was TLS's.
fn rustls_error(err: &(dyn StdError + 'static)) -> Option<rustls::Error> {
    let mut pending = vec![err];
    while let Some(cause) = pending.pop() {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls.clone());
        }
        // An alert that arrives after the handshake (TLS 1.3 refuses a client certificate only
        // then) reaches us as rustls' text alone.
        if let Some(alert) = cause
            .to_string()
            .strip_prefix("received fatal alert: ")
            .and_then(alert_named)
        {
            return Some(rustls::Error::AlertReceived(alert));
        }
        // An io::Error shows its inner error's text but skips it in `source()`, and the TLS
        // connector wraps one io::Error in another.
        if let Some(inner) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            pending.push(inner);
        }
        pending.extend(cause.source());
    }
    None
}

/// The alerts that say something about certificates, by the name rustls prints.
fn alert_named(name: &str) -> Option<AlertDescription> {
    [
        AlertDescription::CertificateRequired,
        AlertDescription::BadCertificate,
        AlertDescription::UnknownCA,
        AlertDescription::CertificateUnknown,
        AlertDescription::CertificateExpired,
        AlertDescription::CertificateRevoked,
        AlertDescription::AccessDenied,
        AlertDescription::HandshakeFailure,
    ]
    .into_iter()
    .find(|a| format!("{a:?}") == name.trim())
}

fn date(time: rustls::pki_types::UnixTime) -> String {
    chrono::DateTime::from_timestamp(time.as_secs() as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "an unreadable date".into())
}

/// What went wrong in words a person can act on, when `err` is a TLS failure of the connection
/// `name` configured with `tls`; `None` for any other failure.
pub fn explain(err: &(dyn StdError + 'static), name: &str, tls: &TlsConfig) -> Option<String> {
    let at = format!("[connections.{name}]");
    let ca_hint = match &tls.ca_file {
        Some(path) => format!(
            "; it is not signed by the CA in tls.ca_file ({}) either: point ca_file at the CA \
             that signed the server's certificate",
            path.display()
        ),
        None => format!(
            "; if the server uses a private CA, set tls = {{ ca_file = \"/path/to/ca.pem\" }} in {at}"
        ),
    };
    let client_hint = match &tls.client_cert {
        Some(path) => format!(
            "the server refused Baton's client certificate (tls.client_cert = {}): it does not \
             trust it or it expired",
            path.display()
        ),
        None => format!(
            "the server asks for a client certificate (mutual TLS): set tls = {{ client_cert = \
             \"…\", client_key = \"…\" }} in {at}"
        ),
    };
    let said = match &rustls_error(err)? {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => format!(
                "TLS: the server's certificate was not issued by a certificate authority Baton \
                 trusts (unknown issuer){ca_hint}"
            ),
            CertificateError::BadSignature => format!(
                "TLS: the server's certificate chain does not verify (bad signature){ca_hint}"
            ),
            CertificateError::Expired => {
                "TLS: the server's certificate has expired; it must be renewed on the server"
                    .to_string()
            }
            CertificateError::ExpiredContext { not_after, .. } => format!(
                "TLS: the server's certificate expired on {}; it must be renewed on the server",
                date(*not_after)
            ),
            CertificateError::NotValidYet => {
                "TLS: the server's certificate is not valid yet; check the clocks of both machines"
                    .to_string()
            }
            CertificateError::NotValidYetContext { not_before, .. } => format!(
                "TLS: the server's certificate is valid only from {}; check the clocks of both \
                 machines",
                date(*not_before)
            ),
            CertificateError::NotValidForName => format!(
                "TLS: the server's certificate is not valid for the host name in base_url; use \
                 a name the certificate lists in {at}"
            ),
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => format!(
                "TLS: the server's certificate is not valid for the host name `{}` (it names {}); \
                 use one of those names in base_url in {at}",
                expected.to_str(),
                if presented.is_empty() {
                    "no host".to_string()
                } else {
                    presented.join(", ")
                }
            ),
            CertificateError::Revoked => {
                "TLS: the server's certificate has been revoked".to_string()
            }
            other => format!("TLS: the server's certificate was refused ({other:?}){ca_hint}"),
        },
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied,
        ) => format!("TLS: {client_hint}"),
        rustls::Error::AlertReceived(AlertDescription::HandshakeFailure)
            if tls.client_cert.is_none() =>
        {
            format!("TLS: the handshake failed; {client_hint}, or the server offers no cipher Baton knows")
        }
        rustls::Error::NoCertificatesPresented => {
            "TLS: the server presented no certificate".to_string()
        }
        other => format!("TLS: the handshake failed ({other})"),
    };
    Some(said)
}
