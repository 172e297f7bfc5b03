//! Apptainer/Singularity images (SIF): the format ([`format`], pure), a
//! reader over `Read + Seek` ([`reader`]), and the image read as the
//! catalogue reads any image: the primary system partition's squashfs as
//! one layer, or, for OCI-SIF files, the OCI index, manifest, config and
//! layers stored as OCI blob objects.

pub mod format;
pub mod reader;
mod squashfs;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::layer::{self, LayerCollection, LayerCtx};
use super::layout::OciLayout;
use super::source::ImageSource;
use super::{Catalogue, ImageError, ReadOptions, catalogue};
use crate::oci::{Digest, Platform};
use crate::oci::{ImageConfig, LayerRef, ResolvedPlatform};
pub use format::{
    DataType, Descriptor, Extra, FsType, HashType, Header, Link, ParseSifError, PartType,
};
pub use reader::{MAX_DESCRIPTORS, Section, SifFile};

/// Largest definition file, index or manifest read from a SIF into memory.
const MAX_SMALL_OBJECT: u64 = 16 << 20;

/// The media type Apptainer gives squashfs layers of OCI-SIF images.
const SQUASHFS_LAYER: &str = "application/vnd.sylabs.image.layer.v1.squashfs";

/// Why a SIF cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SifError {
    #[error(transparent)]
    Format(#[from] ParseSifError),
    #[error("cannot read {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} has {size} bytes, more than the {limit} read into memory")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error(
        "the header counts {count} descriptors, more than the {MAX_DESCRIPTORS} imagelock reads"
    )]
    TooManyDescriptors { count: u64 },
    #[error("it has no root filesystem: no primary system partition and no OCI root index")]
    NoRootFs,
    #[error("its primary system partition (object {id}) is {fs}, which imagelock cannot read")]
    UnsupportedFs { id: u32, fs: FsType },
    #[error(
        "object {id} does not match its digest: the descriptor says `{expected}`, the data is `{actual}`"
    )]
    ObjectDigest {
        id: u32,
        expected: Digest,
        actual: Digest,
    },
}

impl SifError {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Format(ParseSifError::NotSif | ParseSifError::TooShort { .. }) => {
                "is this the `.sif` that `apptainer build` wrote? a sandbox directory or a squashfs alone is not a SIF"
            }
            Self::Format(ParseSifError::Version { .. }) => {
                "imagelock reads SIF version 01, which Singularity 3 and every Apptainer write"
            }
            Self::Format(_) | Self::TooManyDescriptors { .. } | Self::ObjectDigest { .. } => {
                "the file is truncated or corrupt; `apptainer sif list` shows what it holds"
            }
            Self::Io { .. } => "check that the file exists and is readable",
            Self::TooLarge { .. } => "such an object is not a definition, index or manifest",
            Self::NoRootFs => {
                "build the image with `apptainer build`; a SIF of data objects only has no packages to verify"
            }
            Self::UnsupportedFs {
                fs: FsType::Ext3, ..
            } => {
                "ext3 images (`apptainer build --writable` of old) cannot be read yet; rebuild as squashfs (`apptainer build new.sif old.sif`)"
            }
            Self::UnsupportedFs { .. } => {
                "encrypted root filesystems cannot be read without their key; verify the image before it is encrypted"
            }
        }
    }
}

/// A signature object: present or not, and by whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SifSignature {
    pub object: u32,
    pub hash: HashType,
    /// The key's fingerprint, upper-case hex, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// What it signs: `object N` or `group N`.
    pub signs: String,
}

/// What a SIF says about itself, beside its packages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SifSummary {
    /// sha256 of the whole file.
    pub sha256: Digest,
    /// The header's UUID.
    pub id: String,
    /// `native` (a root filesystem partition) or `oci` (OCI-SIF).
    pub kind: &'static str,
    /// The primary partition's or the OCI image's architecture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The definition file it was built from (its `Def.FILE` object), as
    /// text; `None` when it has none (OCI-SIF images do not carry one).
    #[serde(skip)]
    pub definition: Option<String>,
    pub signatures: Vec<SifSignature>,
}

impl SifSummary {
    /// Compares the embedded definition with the definition file's text.
    pub fn check_definition(&self, current: &str) -> DefinitionCheck {
        match &self.definition {
            None => DefinitionCheck::Absent,
            Some(embedded) if embedded == current => DefinitionCheck::Same,
            Some(embedded) if normalized(embedded) == normalized(current) => {
                DefinitionCheck::SameButWhitespace
            }
            Some(_) => DefinitionCheck::Differs,
        }
    }
}

fn normalized(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The SIF's embedded definition against the definition file as it is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefinitionCheck {
    /// Byte for byte the same.
    Same,
    /// The same but for line endings, trailing spaces and blank lines.
    SameButWhitespace,
    /// Another definition: the image was built from something else.
    Differs,
    /// The SIF has no definition object.
    Absent,
}

/// A `.sif` file opened for reading.
pub struct SifImage {
    reference: String,
    path: PathBuf,
    file: SifFile<fs_err::File>,
}

impl SifImage {
    /// Opens and checks `path`'s header and descriptors.
    pub fn open(reference: &str, path: &Path) -> Result<Self, ImageError> {
        let sif_err = |source: SifError| ImageError::Sif {
            reference: reference.to_string(),
            hint: source.hint(),
            source: Box::new(source),
        };
        let f = fs_err::File::open(path).map_err(|source| {
            sif_err(SifError::Io {
                what: "the file".into(),
                source,
            })
        })?;
        Ok(Self {
            reference: reference.to_string(),
            path: path.to_path_buf(),
            file: SifFile::read(f).map_err(sif_err)?,
        })
    }

    fn err(&self, source: SifError) -> ImageError {
        ImageError::Sif {
            reference: self.reference.clone(),
            hint: source.hint(),
            source: Box::new(source),
        }
    }

    /// The parsed file.
    pub fn file(&self) -> &SifFile<fs_err::File> {
        &self.file
    }

    /// Reads the image for `platform`: checks every OCI object against its
    /// digest, catalogues the root filesystem, and sums the SIF up.
    pub fn read_catalogue(
        &mut self,
        platform: &Platform,
        opts: &ReadOptions,
    ) -> Result<(Catalogue, SifSummary), ImageError> {
        let (sha256, digests) = self.file.digests().map_err(|e| self.err(e))?;
        let digest_of = |id: u32| {
            digests
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| Digest::sha256_of(b""))
        };
        for d in self.file.objects() {
            if let Extra::Oci { digest } = &d.extra {
                let actual = digest_of(d.id);
                if &actual != digest {
                    return Err(self.err(SifError::ObjectDigest {
                        id: d.id,
                        expected: digest.clone(),
                        actual,
                    }));
                }
            }
        }
        let deffile = self.file.of_type(DataType::Deffile).next().cloned();
        let definition = match deffile {
            Some(d) => {
                let bytes = self
                    .file
                    .read_object(&d, MAX_SMALL_OBJECT)
                    .map_err(|e| self.err(e))?;
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            None => None,
        };
        let signatures = self
            .file
            .of_type(DataType::Signature)
            .map(|d| {
                let (hash, fingerprint) = match &d.extra {
                    Extra::Signature { hash, fingerprint } => (*hash, fingerprint.clone()),
                    _ => (HashType::Unknown(0), None),
                };
                SifSignature {
                    object: d.id,
                    hash,
                    fingerprint,
                    signs: match d.link {
                        Some(Link::Group(g)) => format!("group {g}"),
                        Some(Link::Object(o)) => format!("object {o}"),
                        None => "nothing".into(),
                    },
                }
            })
            .collect();
        let (catalogue, kind, arch) = if let Some(part) = self.file.primary_partition().cloned() {
            let Extra::Partition { fs, arch, .. } = part.extra else {
                return Err(self.err(SifError::NoRootFs));
            };
            if fs != FsType::Squashfs {
                return Err(self.err(SifError::UnsupportedFs { id: part.id, fs }));
            }
            let arch = arch.or(self.file.header().arch).map(str::to_string);
            let digest = digest_of(part.id);
            let image = ResolvedPlatform {
                reference: self.reference.clone(),
                platform: platform.clone(),
                index_digest: None,
                manifest_digest: None,
                media_type: None,
                // A SIF has no config: the root filesystem's digest is its
                // identity, as a config digest is an OCI image's.
                config_digest: digest.clone(),
                config: ImageConfig {
                    architecture: arch.clone().unwrap_or_default(),
                    os: "linux".into(),
                    variant: None,
                    env: Vec::new(),
                    user: None,
                    diff_ids: vec![digest.clone()],
                    created: None,
                },
                layers: vec![LayerRef {
                    digest: Some(digest.clone()),
                    media_type: Some(SQUASHFS_LAYER.into()),
                    size: Some(part.size),
                    diff_id: digest,
                }],
            };
            let collected = std::sync::atomic::AtomicU64::new(0);
            let ctx = LayerCtx {
                reference: &self.reference,
                index: 0,
                layer: &image.layers[0],
                opts,
                collected: &collected,
            };
            let section = self.file.section(&part);
            let collection = squashfs::collect(&ctx, section, part.size)?;
            (
                catalogue::merge(image, platform.clone(), vec![collection]),
                "native",
                arch,
            )
        } else if self.file.of_type(DataType::OciRootIndex).next().is_some() {
            let blobs = SifBlobs {
                reference: self.reference.clone(),
                path: self.path.clone(),
                objects: self.file.objects().to_vec(),
            };
            let layout = OciLayout::from_store(&self.reference, None, Box::new(blobs.clone()));
            let image = layout.resolve(platform)?;
            let mut layers = Vec::with_capacity(image.layers.len());
            let collected = std::sync::atomic::AtomicU64::new(0);
            for (i, l) in image.layers.iter().enumerate() {
                layers.push(blobs.read_layer(i, l, opts, &collected)?);
            }
            let arch = Some(image.config.architecture.clone()).filter(|a| !a.is_empty());
            (
                catalogue::merge(image, platform.clone(), layers),
                "oci",
                arch,
            )
        } else {
            return Err(self.err(SifError::NoRootFs));
        };
        let summary = SifSummary {
            sha256,
            id: self.file.header().id.clone(),
            kind,
            arch,
            definition,
            signatures,
        };
        Ok((catalogue, summary))
    }
}

/// The OCI blobs of an OCI-SIF, as a content-addressed store. Each read
/// opens the file anew, so layers can be read from several threads.
#[derive(Clone)]
struct SifBlobs {
    reference: String,
    path: PathBuf,
    objects: Vec<Descriptor>,
}

impl SifBlobs {
    fn find(&self, t: DataType, digest: Option<&Digest>) -> Option<&Descriptor> {
        self.objects.iter().find(|d| {
            d.data_type == t
                && match (&d.extra, digest) {
                    (Extra::Oci { digest: have }, Some(want)) => have == want,
                    (_, None) => true,
                    _ => false,
                }
        })
    }

    fn open(&self, d: &Descriptor) -> Result<Section<fs_err::File>, ImageError> {
        let f = fs_err::File::open(&self.path).map_err(|source| ImageError::Io {
            reference: self.reference.clone(),
            what: format!("object {}", d.id),
            source,
        })?;
        Ok(Section::new(f, d.offset, d.size))
    }

    fn read_layer(
        &self,
        index: usize,
        l: &LayerRef,
        opts: &ReadOptions,
        collected: &std::sync::atomic::AtomicU64,
    ) -> Result<LayerCollection, ImageError> {
        let ctx = LayerCtx {
            reference: &self.reference,
            index,
            layer: l,
            opts,
            collected,
        };
        let is_squashfs = l
            .media_type
            .as_deref()
            .is_some_and(|m| m.contains("squashfs"));
        if is_squashfs {
            let digest = l.digest.as_ref().unwrap_or(&l.diff_id);
            let d = self.find(DataType::OciBlob, Some(digest)).ok_or_else(|| {
                ImageError::BlobMissing {
                    reference: self.reference.clone(),
                    digest: digest.clone(),
                }
            })?;
            // The blob's bytes were checked against the descriptor's digest;
            // a squashfs layer is not compressed, so its diff_id is the same.
            if l.diff_id != *digest {
                return Err(ImageError::DiffIdMismatch {
                    reference: self.reference.clone(),
                    layer: index + 1,
                    expected: l.diff_id.clone(),
                    actual: digest.clone(),
                });
            }
            return squashfs::collect(&ctx, self.open(d)?, d.size);
        }
        layer::read_layer(&ctx, &|| {
            let digest = l.digest.as_ref().ok_or_else(|| ImageError::Malformed {
                reference: self.reference.clone(),
                what: format!("layer {}", index + 1),
                message: "it has no blob digest".into(),
            })?;
            self.blob(digest)
        })
    }
}

impl SifBlobs {
    /// The OCI root index (the layout's `index.json`), checked against the
    /// digest its descriptor records.
    fn root_index(&self) -> Result<Vec<u8>, ImageError> {
        let d = self
            .find(DataType::OciRootIndex, None)
            .ok_or_else(|| ImageError::Malformed {
                reference: self.reference.clone(),
                what: "the SIF".into(),
                message: "it has no OCI root index".into(),
            })?;
        if d.size > MAX_SMALL_OBJECT {
            return Err(ImageError::Malformed {
                reference: self.reference.clone(),
                what: "the OCI root index".into(),
                message: format!("larger than {MAX_SMALL_OBJECT} bytes"),
            });
        }
        let mut bytes = Vec::new();
        self.open(d)?
            .read_to_end(&mut bytes)
            .map_err(|source| ImageError::Io {
                reference: self.reference.clone(),
                what: "the OCI root index".into(),
                source,
            })?;
        if let Extra::Oci { digest } = &d.extra {
            crate::oci::check_digest(digest, &bytes).map_err(|e| ImageError::Malformed {
                reference: self.reference.clone(),
                what: "the OCI root index".into(),
                message: e.to_string(),
            })?;
        }
        Ok(bytes)
    }

    fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let d =
            self.find(DataType::OciBlob, Some(digest))
                .ok_or_else(|| ImageError::BlobMissing {
                    reference: self.reference.clone(),
                    digest: digest.clone(),
                })?;
        Ok(Box::new(self.open(d)?))
    }

    /// The object an OCI layout path names: `index.json` or
    /// `blobs/ALG/HEX`.
    fn object_of(&self, path: &str) -> Option<&Descriptor> {
        if path == "index.json" {
            return self.find(DataType::OciRootIndex, None);
        }
        let digest: Digest = path
            .strip_prefix("blobs/")?
            .replacen('/', ":", 1)
            .parse()
            .ok()?;
        self.find(DataType::OciBlob, Some(&digest))
    }
}

/// An OCI-SIF is an OCI image layout whose files are SIF objects.
impl super::store::Store for SifBlobs {
    fn open(&self, path: &str) -> std::io::Result<Box<dyn Read + Send + '_>> {
        let to_io = |e: ImageError| std::io::Error::other(e.to_string());
        if path == "index.json" {
            return Ok(Box::new(std::io::Cursor::new(
                self.root_index().map_err(to_io)?,
            )));
        }
        let d = self.object_of(path).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no object for `{path}`"),
            )
        })?;
        Ok(Box::new(SifBlobs::open(self, d).map_err(to_io)?))
    }

    fn len(&self, path: &str) -> Option<u64> {
        self.object_of(path).map(|d| d.size)
    }
}
