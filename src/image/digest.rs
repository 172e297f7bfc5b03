//! A reader that hashes what passes through it, for checking blobs and
//! layers while they stream.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::oci::Digest;

/// A reader that hashes and counts what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Reads to the end and returns the digest of everything read and the
    /// byte count.
    pub(crate) fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            Digest::from_sha256_output(&self.hasher.finalize()),
            self.count,
        ))
    }
}

impl<R> HashingReader<R> {
    /// The digest and count of what was read so far, and the inner reader.
    pub(crate) fn into_parts(self) -> (Digest, u64, R) {
        (
            Digest::from_sha256_output(&self.hasher.finalize()),
            self.count,
            self.inner,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
