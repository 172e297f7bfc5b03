//! `docker://` images: the registry client read through [`BlobSource`].
//!
//! The client is async and the image reader is not (it runs on blocking
//! threads), so every call is bridged with [`Handle::block_on`]: never call
//! these methods from inside an async task.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use tokio::runtime::Handle;

use super::ImageError;
use super::source::{BlobSource, Fetched};
use crate::oci::{Digest, ImageRef};
use crate::resolve::registry::BlobStream;
use crate::resolve::{Registry, ResolveError};

/// An image in a registry, read with the registry client.
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

impl BlobSource for RegistryImage {
    fn reference(&self) -> &str {
        &self.reference
    }

    fn root(&self) -> Result<Fetched, ImageError> {
        let (bytes, digest) = self
            .handle
            .block_on(self.registry.fetch_manifest(&self.image))
            .map_err(|e| self.error(e))?;
        Ok(Fetched {
            bytes: bytes.to_vec(),
            digest: Some(digest),
        })
    }

    fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        self.handle
            .block_on(self.registry.fetch_by_digest_of(&self.image, digest, true))
            .map(|b| b.to_vec())
            .map_err(|e| self.error(e))
    }

    fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError> {
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
