//! `docker://` images: resolved by the registry client (the async walk
//! over [`crate::oci`]), layers streamed from it.
//!
//! The client is async and the image reader is not (it runs on blocking
//! threads), so every call is bridged with [`Handle::block_on`]: never call
//! these methods from inside an async task.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use tokio::runtime::Handle;

use super::ImageError;
use super::source::{ImageSource, blob_digest};
use crate::oci::{ImageRef, LayerRef, Platform, ResolvedPlatform};
use crate::resolve::registry::BlobStream;
use crate::resolve::{Registry, ResolveError};

/// An image in a registry, read with the registry client. Opened by tag, or
/// by the digest a freeze just resolved (which the client has cached, so
/// reading it costs no request for its manifest and config).
pub struct RegistryImage {
    registry: Arc<Registry>,
    image: ImageRef,
    reference: String,
    handle: Handle,
}

impl RegistryImage {
    /// `handle` runs the client's requests; the methods block on it.
    pub fn new(registry: Arc<Registry>, image: ImageRef, handle: Handle) -> Self {
        Self {
            reference: format!("docker://{image}"),
            registry,
            image,
            handle,
        }
    }

    fn error(&self, e: ResolveError) -> ImageError {
        ImageError::Registry {
            reference: self.reference.clone(),
            source: Box::new(e),
        }
    }
}

impl ImageSource for RegistryImage {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn resolve(&self, platform: &Platform) -> Result<ResolvedPlatform, ImageError> {
        let resolved = self
            .handle
            .block_on(
                self.registry
                    .resolve(&self.image, std::slice::from_ref(platform)),
            )
            .map_err(|e| match e {
                ResolveError::PlatformNotFound { available, .. } => ImageError::PlatformMissing {
                    reference: self.reference.clone(),
                    platform: platform.clone(),
                    available,
                },
                e => self.error(e),
            })?;
        let mut one =
            resolved
                .platforms
                .into_iter()
                .next()
                .ok_or_else(|| ImageError::PlatformMissing {
                    reference: self.reference.clone(),
                    platform: platform.clone(),
                    available: "none".into(),
                })?;
        one.reference.clone_from(&self.reference);
        Ok(one)
    }

    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let digest = blob_digest(&self.reference, layer)?;
        let stream = self
            .handle
            .block_on(self.registry.open_blob(&self.image, digest))
            .map_err(|e| self.error(e))?;
        Ok(match stream {
            BlobStream::File(f) => Box::new(f),
            BlobStream::Remote(response) => Box::new(BlockingBody {
                handle: self.handle.clone(),
                response,
                chunk: Bytes::new(),
            }),
        })
    }

    fn layer_origin(&self, layer: &LayerRef) -> Option<String> {
        // A blob is fetched by its digest from the repository: the same
        // registry, repository and digest name the same bytes.
        let digest = layer.digest.as_ref()?;
        Some(format!(
            "registry:{}/{}@{digest}",
            self.image.registry(),
            self.image.repository()
        ))
    }
}

/// A response body read chunk by chunk from a blocking thread.
struct BlockingBody {
    handle: Handle,
    response: Box<crate::resolve::http::Body>,
    chunk: Bytes,
}

impl Read for BlockingBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.response.chunk()) {
                Ok(Some(c)) => self.chunk = c,
                Ok(None) => return Ok(0),
                Err(e) => return Err(io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}
