//! Who is calling: a per-service credential on internal gRPC calls.
//!
//! A caller sends its name in `x-scifer-service` and its credential in `authorization: Bearer ..`.
//! The callee is configured with the SHA-256 of each allowed service's credential (never the
//! credential itself), e.g. `SERVICE_CREDENTIALS=gateway:<hex>,inbox:<hex>`, compares in constant
//! time and then decides per RPC whether that service may call it. Production adds mutual TLS in
//! front (the service mesh or the operator's ingress); the credential check stays, so a workload
//! that reaches the port without the mesh is still refused.

use std::collections::BTreeMap;

use ring::digest;
use secrecy::{ExposeSecret, SecretString};
use tonic::{Request, Status, metadata::MetadataMap};

pub const SERVICE_HEADER: &str = "x-scifer-service";

/// A calling service's name and credential.
#[derive(Clone)]
pub struct ServiceCredential {
    service: String,
    secret: SecretString,
}

impl std::fmt::Debug for ServiceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCredential")
            .field("service", &self.service)
            .field("secret", &"***")
            .finish()
    }
}

impl ServiceCredential {
    pub fn new(service: impl Into<String>, secret: SecretString) -> Self {
        Self {
            service: service.into(),
            secret,
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Adds the identity headers to an outgoing request.
    pub fn attach<T>(&self, request: &mut Request<T>) -> Result<(), Status> {
        let md = request.metadata_mut();
        let name = self
            .service
            .parse()
            .map_err(|_| Status::internal("service name is not a valid header value"))?;
        md.insert(SERVICE_HEADER, name);
        let bearer = format!("Bearer {}", self.secret.expose_secret())
            .parse()
            .map_err(|_| Status::internal("service credential is not a valid header value"))?;
        md.insert("authorization", bearer);
        Ok(())
    }

    /// The hex SHA-256 a callee is configured with for this credential.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.secret.expose_secret())
    }
}

/// Hex SHA-256 of a credential: what the callee's configuration holds.
pub fn fingerprint(secret: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

/// Adds the caller's trace context and its service identity to every outgoing call.
#[derive(Clone)]
pub struct Identify(pub ServiceCredential);

impl tonic::service::Interceptor for Identify {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let mut request = crate::grpc::propagate_trace(request)?;
        self.0.attach(&mut request)?;
        Ok(request)
    }
}

/// A channel to another service's gRPC endpoint that sends `credential` on every call. It connects
/// on first use (and reconnects after failures), so a caller starts while its callee is down;
/// `timeout` bounds connecting.
pub fn identified_channel(
    url: &str,
    timeout: std::time::Duration,
    credential: ServiceCredential,
) -> Result<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Identify>, InvalidUrl>
{
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_string()).map_err(|e| InvalidUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    let channel = endpoint.connect_timeout(timeout).connect_lazy();
    Ok(tonic::service::interceptor::InterceptedService::new(
        channel,
        Identify(credential),
    ))
}

#[derive(Debug, thiserror::Error)]
#[error("{url:?} is not a valid service URL: {reason}")]
pub struct InvalidUrl {
    url: String,
    reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("service credentials must be `name:sha256hex` pairs separated by commas; `{0}` is not")]
    Malformed(String),
    #[error("the credential fingerprint for `{0}` is not 64 hex digits")]
    BadFingerprint(String),
    #[error("service `{0}` is listed twice")]
    Duplicate(String),
}

/// The services allowed to call, with the fingerprints of their credentials.
#[derive(Debug, Clone, Default)]
pub struct ServiceAuthenticator {
    expected: BTreeMap<String, [u8; 32]>,
}

impl ServiceAuthenticator {
    /// Parses `gateway:<hex>,inbox:<hex>`; whitespace around entries is ignored.
    pub fn parse(spec: &str) -> Result<Self, CredentialsError> {
        let mut expected = BTreeMap::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, hex_digest) = entry
                .split_once(':')
                .ok_or_else(|| CredentialsError::Malformed(entry.to_string()))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(CredentialsError::Malformed(entry.to_string()));
            }
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hex_digest.trim(), &mut digest)
                .map_err(|_| CredentialsError::BadFingerprint(name.to_string()))?;
            if expected.insert(name.to_string(), digest).is_some() {
                return Err(CredentialsError::Duplicate(name.to_string()));
            }
        }
        Ok(Self { expected })
    }

    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.expected.keys().map(String::as_str)
    }

    /// The authenticated caller's name, or UNAUTHENTICATED. The reason is the same for an unknown
    /// service and a wrong credential, so the answer does not reveal which services exist.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<String, Status> {
        let refused = || Status::unauthenticated("service credential missing or not valid");
        let service = metadata
            .get(SERVICE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(refused)?;
        let presented = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(refused)?;
        let presented = digest::digest(&digest::SHA256, presented.as_bytes());
        let expected = self.expected.get(service).ok_or_else(refused)?;
        // Constant time over the fixed-length digests (ring's helper for this is deprecated).
        let diff = presented
            .as_ref()
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(refused());
        }
        Ok(service.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn request_from(cred: &ServiceCredential) -> Request<()> {
        let mut r = Request::new(());
        cred.attach(&mut r).unwrap();
        r
    }

    #[test]
    fn a_configured_service_with_its_credential_is_recognised() {
        let inbox = ServiceCredential::new("inbox", SecretString::from("s3cret-inbox"));
        let auth = ServiceAuthenticator::parse(&format!("inbox:{}", inbox.fingerprint())).unwrap();
        assert_eq!(
            auth.authenticate(request_from(&inbox).metadata()).unwrap(),
            "inbox"
        );
    }

    #[test]
    fn wrong_credential_unknown_service_and_missing_headers_are_refused_alike() {
        let inbox = ServiceCredential::new("inbox", SecretString::from("s3cret-inbox"));
        let auth = ServiceAuthenticator::parse(&format!("inbox:{}", inbox.fingerprint())).unwrap();
        let wrong = ServiceCredential::new("inbox", SecretString::from("guess"));
        let stranger = ServiceCredential::new("publisher", SecretString::from("s3cret-inbox"));
        for md in [
            request_from(&wrong).metadata().clone(),
            request_from(&stranger).metadata().clone(),
            MetadataMap::new(),
        ] {
            let status = auth.authenticate(&md).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            assert_eq!(status.message(), "service credential missing or not valid");
        }
    }

    #[test]
    fn malformed_specs_are_refused_with_the_reason() {
        assert!(matches!(
            ServiceAuthenticator::parse("inbox"),
            Err(CredentialsError::Malformed(_))
        ));
        assert!(matches!(
            ServiceAuthenticator::parse("inbox:abcd"),
            Err(CredentialsError::BadFingerprint(_))
        ));
        let fp = fingerprint("x");
        assert!(matches!(
            ServiceAuthenticator::parse(&format!("inbox:{fp},inbox:{fp}")),
            Err(CredentialsError::Duplicate(_))
        ));
        assert_eq!(ServiceAuthenticator::parse("").unwrap().services().count(), 0);
    }

    #[test]
    fn the_credential_never_shows_in_debug() {
        let c = ServiceCredential::new("inbox", SecretString::from("canary-secret"));
        assert!(!format!("{c:?}").contains("canary-secret"));
    }
}
