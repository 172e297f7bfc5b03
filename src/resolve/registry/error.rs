use std::path::PathBuf;

use crate::resolve::auth::AuthError;
use crate::resolve::http::HttpError;

/// Why an image could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "`{image}`: `{registry}` refused anonymous or given credentials (401)\nhint: log in with `docker login {registry}` (or `podman login`), or check the credentials in your auth file"
    )]
    Unauthorized { image: String, registry: String },
    #[error(
        "`{image}`: `{registry}` denied access (403)\nhint: the image may be private or your account lacks pull access to it"
    )]
    Denied { image: String, registry: String },
    #[error(
        "`{image}` was not found on `{registry}` (404)\nhint: check the name and tag for a typo; a private image also answers 404 without credentials"
    )]
    NotFound { image: String, registry: String },
    #[error("`{image}`: `{registry}` answered {status} for `{url}`")]
    Status {
        image: String,
        registry: String,
        status: u16,
        url: String,
    },
    #[error(
        "`{image}`: {what} is larger than {limit} bytes\nhint: registries refuse {what} this large; the source is likely not a registry, or not serving what it was asked for"
    )]
    TooLarge {
        image: String,
        /// `the manifest`, `the image config`.
        what: &'static str,
        limit: u64,
    },
    #[error(
        "`{image}`: content from `{registry}` does not match its digest: expected `{expected}`, got `{actual}`\nhint: a proxy or mirror may be altering responses; try again or bypass it"
    )]
    DigestMismatch {
        image: String,
        registry: String,
        expected: String,
        actual: String,
    },
    #[error(
        "`{image}` has no image for `{platform}`; it has {available}\nhint: choose one of its platforms in `platforms` or use another image"
    )]
    PlatformNotFound {
        image: String,
        platform: String,
        available: String,
    },
    #[error("`{image}`: unsupported or invalid manifest from `{registry}`: {reason}")]
    InvalidManifest {
        image: String,
        registry: String,
        reason: String,
    },
    #[error(
        "`{image}`: cannot reach `{registry}`: {source}\nhint: if `{registry}` cannot be reached from here, point `[registries.\"{registry}\"] location` or `mirrors` in imagelock.toml at a registry that can"
    )]
    Http {
        image: String,
        registry: String,
        #[source]
        source: Box<HttpError>,
    },
    #[error(
        "`{image}`: `{registry}` redirected the request to `{host}`, which answered {status}\nhint: that is the registry's storage refusing its own signed link, not your credentials; run again, and if it persists tell the registry's operators"
    )]
    Redirected {
        image: String,
        registry: String,
        host: String,
        status: u16,
    },
    #[error(
        "`{registry}` is not reachable over HTTPS and plain HTTP is not allowed for it\nhint: set `insecure = true` under `[registries.\"{registry}\"]` in imagelock.toml if you trust the network"
    )]
    Insecure { registry: String },
    #[error(
        "`{image}`: `{host}`, where `{registry}` redirected the request, asks for credentials\nhint: imagelock never sends a registry's credentials to another host (as containerd); the registry's storage should hand out signed URLs that need none"
    )]
    ForeignChallenge {
        image: String,
        registry: String,
        host: String,
    },
    #[error("`{image}`: cannot get a token from `{realm}`: {reason}")]
    Token {
        image: String,
        realm: String,
        reason: String,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("`{image}`: OCI layout `{}`: {reason}", dir.display())]
    Layout {
        image: String,
        dir: PathBuf,
        reason: String,
    },
    #[error(
        "`{location}` is not a usable registry location for `{registry}`\nhint: write a host[:port][/namespace] or `oci:DIR`"
    )]
    Location { registry: String, location: String },
    #[error(
        "`{location}` is not in a registry or an OCI layout\nhint: archives and the Docker Engine are read by `imagelock verify --image`, not resolved"
    )]
    Transport { location: String },
}
