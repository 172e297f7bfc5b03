//! A SIF read over `Read + Seek`: the header and descriptors checked once,
//! then objects read as bounded sections, never the whole file in memory.

use std::io::{self, Read, Seek, SeekFrom};

use sha2::{Digest as _, Sha256};

use super::SifError;
use super::format::{DESCRIPTOR_LEN, DataType, Descriptor, HEADER_LEN, Header, check_layout};
use crate::oci::Digest;

/// Most descriptor slots read. Apptainer writes 48 by default and a few
/// hundred for OCI-SIF images with many layers; a count far past that is a
/// corrupt or hostile header, refused before anything is allocated for it.
pub const MAX_DESCRIPTORS: u64 = 1 << 16;

/// A SIF file: its header and the descriptors of its data objects.
#[derive(Debug)]
pub struct SifFile<R> {
    inner: R,
    len: u64,
    header: Header,
    objects: Vec<Descriptor>,
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> SifError + '_ {
    move |source| SifError::Io {
        what: what.to_string(),
        source,
    }
}

impl<R: Read + Seek> SifFile<R> {
    /// Reads and checks the header and the descriptor table: every object
    /// within the file, none overlapping another, the header or the table.
    pub fn read(mut inner: R) -> Result<Self, SifError> {
        let len = inner.seek(SeekFrom::End(0)).map_err(io_err("the file"))?;
        inner.seek(SeekFrom::Start(0)).map_err(io_err("the file"))?;
        let mut head = Vec::with_capacity(HEADER_LEN);
        (&mut inner)
            .take(HEADER_LEN as u64)
            .read_to_end(&mut head)
            .map_err(io_err("the header"))?;
        let header = Header::parse(&head, len)?;
        if header.descriptors_total > MAX_DESCRIPTORS {
            return Err(SifError::TooManyDescriptors {
                count: header.descriptors_total,
            });
        }
        inner
            .seek(SeekFrom::Start(header.descriptors_offset))
            .map_err(io_err("the descriptor table"))?;
        // Read slot by slot: only used slots are kept, so memory follows the
        // objects the file really has.
        let mut objects = Vec::new();
        let mut slot = [0u8; DESCRIPTOR_LEN];
        for index in 0..header.descriptors_total {
            inner
                .read_exact(&mut slot)
                .map_err(io_err("the descriptor table"))?;
            let offset = header.descriptors_offset + index * DESCRIPTOR_LEN as u64;
            if let Some(d) = Descriptor::parse(&slot, index, offset, len)? {
                objects.push(d);
            }
        }
        check_layout(&header, &objects)?;
        Ok(Self {
            inner,
            len,
            header,
            objects,
        })
    }

    /// An object's data as a reader of exactly its bytes.
    pub fn section(&mut self, object: &Descriptor) -> Section<&mut R> {
        Section::new(&mut self.inner, object.offset, object.size)
    }

    /// An object's data in memory, refused past `limit` bytes.
    pub fn read_object(&mut self, object: &Descriptor, limit: u64) -> Result<Vec<u8>, SifError> {
        if object.size > limit {
            return Err(SifError::TooLarge {
                what: format!("object {} ({})", object.id, object.data_type),
                size: object.size,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(object.size).unwrap_or(0));
        self.section(object)
            .read_to_end(&mut bytes)
            .map_err(io_err(&format!("object {}", object.id)))?;
        Ok(bytes)
    }

    /// The sha256 of the whole file and of every object, in one sequential
    /// pass (a SIF may be many gigabytes; it is read once).
    pub fn digests(&mut self) -> Result<(Digest, Vec<(u32, Digest)>), SifError> {
        let mut order: Vec<&Descriptor> = self.objects.iter().collect();
        order.sort_by_key(|d| d.offset);
        let mut hashers: Vec<Sha256> = order.iter().map(|_| Sha256::new()).collect();
        let mut whole = Sha256::new();
        self.inner
            .seek(SeekFrom::Start(0))
            .map_err(io_err("the file"))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0u64;
        // Objects are sorted and disjoint: the first that may still overlap
        // the current chunk only moves forward.
        let mut first = 0;
        loop {
            let n = self.inner.read(&mut buf).map_err(io_err("the file"))?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            whole.update(chunk);
            let end = pos + n as u64;
            while first < order.len() && order[first].offset + order[first].size <= pos {
                first += 1;
            }
            for (i, d) in order.iter().enumerate().skip(first) {
                if d.offset >= end {
                    break;
                }
                let from = d.offset.max(pos) - pos;
                let to = (d.offset + d.size).min(end) - pos;
                if from < to {
                    hashers[i].update(&chunk[from as usize..to as usize]);
                }
            }
            pos = end;
        }
        if pos != self.len {
            return Err(SifError::Io {
                what: "the file".into(),
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("it changed while read ({} bytes, now {pos})", self.len),
                ),
            });
        }
        let objects = order
            .iter()
            .zip(hashers)
            .map(|(d, h)| (d.id, Digest::from_sha256_output(&h.finalize())))
            .collect();
        Ok((Digest::from_sha256_output(&whole.finalize()), objects))
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Used descriptors, in table order.
    pub fn objects(&self) -> &[Descriptor] {
        &self.objects
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file has no objects.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The primary system partition, the container's root filesystem.
    pub fn primary_partition(&self) -> Option<&Descriptor> {
        self.objects.iter().find(|d| d.is_primary_partition())
    }

    /// Objects of one type, in table order.
    pub fn of_type(&self, t: DataType) -> impl Iterator<Item = &Descriptor> {
        self.objects.iter().filter(move |d| d.data_type == t)
    }

    /// Objects in group `group`, in table order.
    pub fn group(&self, group: u32) -> impl Iterator<Item = &Descriptor> {
        self.objects.iter().filter(move |d| d.group == Some(group))
    }
}

/// A window of `len` bytes at `start` of a seekable reader: reads and seeks
/// stay inside it, so a filesystem parser handed an object cannot read its
/// neighbours.
#[derive(Debug)]
pub struct Section<R> {
    inner: R,
    start: u64,
    len: u64,
    pos: u64,
}

impl<R> Section<R> {
    pub fn new(inner: R, start: u64, len: u64) -> Self {
        Self {
            inner,
            start,
            len,
            pos: 0,
        }
    }
}

impl<R: Read + Seek> Read for Section<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Section<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before the object start")
        })?;
        self.pos = target;
        Ok(target)
    }
}
