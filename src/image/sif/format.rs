//! The SIF on-disk format, parsed from bytes with no I/O: the global header
//! and the object descriptors. Everything is little-endian and packed, as
//! the reference implementation (`pkg/sif` of apptainer/sif) writes it.

use std::fmt;

use serde::Serialize;

use crate::oci::Digest;

/// Bytes in the global header.
pub const HEADER_LEN: usize = 128;
/// Bytes in one descriptor.
pub const DESCRIPTOR_LEN: usize = 585;

const MAGIC: &[u8; 10] = b"SIF_MAGIC\0";
/// Group and link IDs carry this mask: a group ID is `raw & !MASK`, a link to
/// a group has every mask bit set.
const GROUP_MASK: u32 = 0xf000_0000;
/// The size of a signature's entity field, of which the fingerprint is the
/// first 20 bytes.
const ENTITY_LEN: usize = 256;

/// Why a header or descriptor is not SIF. Offsets are into the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseSifError {
    #[error("the file has {len} bytes, fewer than the {HEADER_LEN} bytes of a SIF header")]
    TooShort { len: u64 },
    #[error("the file does not start a SIF header (no `SIF_MAGIC` at byte 32)")]
    NotSif,
    #[error("SIF version `{version}` is not supported (imagelock reads version `01`)")]
    Version { version: String },
    #[error("the header's `{field}` is `{value}`, which {why}")]
    Header {
        field: &'static str,
        value: i64,
        why: String,
    },
    #[error("descriptor {index} (at byte {offset}): {why}")]
    Descriptor {
        index: u64,
        offset: u64,
        why: String,
    },
    #[error("{a} and {b} overlap (bytes {a_start}..{a_end} and {b_start}..{b_end})")]
    Overlap {
        a: String,
        b: String,
        a_start: u64,
        a_end: u64,
        b_start: u64,
        b_end: u64,
    },
}

/// The kind of a data object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataType {
    /// The definition file the image was built from.
    Deffile,
    EnvVars,
    Labels,
    Partition,
    Signature,
    GenericJson,
    Generic,
    CryptoMessage,
    Sbom,
    OciRootIndex,
    OciBlob,
    /// A type this reader does not know, as written.
    Unknown(i32),
}

impl DataType {
    fn from_raw(v: i32) -> Self {
        match v {
            0x4001 => Self::Deffile,
            0x4002 => Self::EnvVars,
            0x4003 => Self::Labels,
            0x4004 => Self::Partition,
            0x4005 => Self::Signature,
            0x4006 => Self::GenericJson,
            0x4007 => Self::Generic,
            0x4008 => Self::CryptoMessage,
            0x4009 => Self::Sbom,
            0x400a => Self::OciRootIndex,
            0x400b => Self::OciBlob,
            other => Self::Unknown(other),
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The names `siftool list` shows.
        let s = match self {
            Self::Deffile => "Def.FILE",
            Self::EnvVars => "Env.Vars",
            Self::Labels => "JSON.Labels",
            Self::Partition => "FS",
            Self::Signature => "Signature",
            Self::GenericJson => "JSON.Generic",
            Self::Generic => "Generic/Raw",
            Self::CryptoMessage => "Cryptographic Message",
            Self::Sbom => "SBOM",
            Self::OciRootIndex => "OCI.RootIndex",
            Self::OciBlob => "OCI.Blob",
            Self::Unknown(v) => return write!(f, "Unknown({v:#x})"),
        };
        f.write_str(s)
    }
}

/// The filesystem of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsType {
    Squashfs,
    Ext3,
    ImmutableArchive,
    Raw,
    EncryptedSquashfs,
    GocryptfsSquashfs,
    Unknown(i32),
}

impl FsType {
    fn from_raw(v: i32) -> Self {
        match v {
            1 => Self::Squashfs,
            2 => Self::Ext3,
            3 => Self::ImmutableArchive,
            4 => Self::Raw,
            5 => Self::EncryptedSquashfs,
            6 => Self::GocryptfsSquashfs,
            other => Self::Unknown(other),
        }
    }
}

impl fmt::Display for FsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Squashfs => "Squashfs",
            Self::Ext3 => "Ext3",
            Self::ImmutableArchive => "Archive",
            Self::Raw => "Raw",
            Self::EncryptedSquashfs => "Encrypted squashfs",
            Self::GocryptfsSquashfs => "Gocryptfs squashfs",
            Self::Unknown(v) => return write!(f, "Unknown({v})"),
        };
        f.write_str(s)
    }
}

/// What a partition holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartType {
    System,
    /// The primary system partition: the container's root filesystem.
    PrimarySystem,
    Data,
    Overlay,
    Unknown(i32),
}

impl PartType {
    fn from_raw(v: i32) -> Self {
        match v {
            1 => Self::System,
            2 => Self::PrimarySystem,
            3 => Self::Data,
            4 => Self::Overlay,
            other => Self::Unknown(other),
        }
    }
}

impl fmt::Display for PartType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::System => "System",
            Self::PrimarySystem => "*System",
            Self::Data => "Data",
            Self::Overlay => "Overlay",
            Self::Unknown(v) => return write!(f, "Unknown({v})"),
        };
        f.write_str(s)
    }
}

/// The hash a signature covers its objects with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashType {
    Sha256,
    Sha384,
    Sha512,
    Blake2s,
    Blake2b,
    Unknown(i32),
}

impl HashType {
    fn from_raw(v: i32) -> Self {
        match v {
            1 => Self::Sha256,
            2 => Self::Sha384,
            3 => Self::Sha512,
            4 => Self::Blake2s,
            5 => Self::Blake2b,
            other => Self::Unknown(other),
        }
    }
}

impl fmt::Display for HashType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
            Self::Blake2s => "BLAKE2s-256",
            Self::Blake2b => "BLAKE2b-256",
            Self::Unknown(v) => return write!(f, "Unknown({v})"),
        };
        f.write_str(s)
    }
}

/// The CPU architecture code of the header and of partitions, as Go (and
/// OCI) name architectures: `amd64`, `arm64`, `386`…; `None` for the
/// unknown code `00` or a code this reader does not know.
fn arch_name(code: &[u8]) -> Option<&'static str> {
    let code = code.split(|b| *b == 0).next().unwrap_or_default();
    Some(match code {
        b"01" => "386",
        b"02" => "amd64",
        b"03" => "arm",
        b"04" => "arm64",
        b"05" => "ppc64",
        b"06" => "ppc64le",
        b"07" => "mips",
        b"08" => "mipsle",
        b"09" => "mips64",
        b"10" => "mips64le",
        b"11" => "s390x",
        b"12" => "riscv64",
        b"13" => "loong64",
        _ => return None,
    })
}

/// The global header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Header {
    /// The `#!` line that makes a SIF executable.
    pub launch_script: String,
    /// `01`.
    pub version: String,
    /// The primary architecture, as Go names it; `None` when unknown.
    pub arch: Option<&'static str>,
    /// The image's UUID, hyphenated.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    pub modified_at: i64,
    pub descriptors_free: u64,
    pub descriptors_total: u64,
    pub descriptors_offset: u64,
    pub descriptors_size: u64,
    pub data_offset: u64,
    pub data_size: u64,
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}

/// A NUL-padded string field; invalid UTF-8 is replaced, not trusted.
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl Header {
    /// Parses and checks the header. `file_len` bounds every offset in it.
    pub fn parse(bytes: &[u8], file_len: u64) -> Result<Self, ParseSifError> {
        if bytes.len() < HEADER_LEN || file_len < HEADER_LEN as u64 {
            return Err(ParseSifError::TooShort {
                len: file_len.min(bytes.len() as u64),
            });
        }
        if &bytes[32..42] != MAGIC {
            return Err(ParseSifError::NotSif);
        }
        let version = cstr(&bytes[42..45]);
        if bytes[42..45] != *b"01\0" {
            return Err(ParseSifError::Version { version });
        }
        let id = {
            let u = &bytes[48..64];
            let h = hex::encode(u);
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        };
        let field = |name: &'static str, at: usize| -> Result<u64, ParseSifError> {
            let v = i64_at(bytes, at);
            u64::try_from(v).map_err(|_| ParseSifError::Header {
                field: name,
                value: v,
                why: "is negative".into(),
            })
        };
        let header = Self {
            launch_script: cstr(&bytes[0..32]),
            version,
            arch: arch_name(&bytes[45..48]),
            id,
            created_at: i64_at(bytes, 64),
            modified_at: i64_at(bytes, 72),
            descriptors_free: field("descriptors free", 80)?,
            descriptors_total: field("descriptors total", 88)?,
            descriptors_offset: field("descriptors offset", 96)?,
            descriptors_size: field("descriptors size", 104)?,
            data_offset: field("data offset", 112)?,
            data_size: field("data size", 120)?,
        };
        let bad = |name: &'static str, value: u64, why: String| ParseSifError::Header {
            field: name,
            value: i64::try_from(value).unwrap_or(i64::MAX),
            why,
        };
        if header.descriptors_free > header.descriptors_total {
            return Err(bad(
                "descriptors free",
                header.descriptors_free,
                format!(
                    "is more than the {} descriptors in total",
                    header.descriptors_total
                ),
            ));
        }
        let table = header
            .descriptors_total
            .checked_mul(DESCRIPTOR_LEN as u64)
            .filter(|t| *t <= header.descriptors_size)
            .ok_or_else(|| {
                bad(
                    "descriptors total",
                    header.descriptors_total,
                    format!(
                        "does not fit the {} bytes of the descriptor table",
                        header.descriptors_size
                    ),
                )
            })?;
        if header.descriptors_offset < HEADER_LEN as u64 {
            return Err(bad(
                "descriptors offset",
                header.descriptors_offset,
                "points into the header".into(),
            ));
        }
        match header.descriptors_offset.checked_add(table) {
            Some(end) if end <= file_len => {}
            _ => {
                return Err(bad(
                    "descriptors offset",
                    header.descriptors_offset,
                    format!(
                        "with {} descriptors of {DESCRIPTOR_LEN} bytes runs past the end of the {file_len}-byte file",
                        header.descriptors_total
                    ),
                ));
            }
        }
        Ok(header)
    }
}

/// Type-specific metadata of a descriptor (its `extra` field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Extra {
    Partition {
        fs: FsType,
        part: PartType,
        /// As Go names it; `None` when unknown.
        arch: Option<&'static str>,
    },
    Signature {
        hash: HashType,
        /// The signing key's fingerprint, upper-case hex, when recorded.
        fingerprint: Option<String>,
    },
    CryptoMessage {
        format: i32,
        message: i32,
    },
    Sbom {
        /// `cyclonedx-json`, `spdx-json`…
        format: String,
    },
    /// OCI root index and OCI blobs carry their digest.
    Oci {
        digest: Digest,
    },
    None,
}

fn sbom_format(v: i32) -> String {
    match v {
        1 => "cyclonedx-json",
        2 => "cyclonedx-xml",
        3 => "github-json",
        4 => "spdx-json",
        5 => "spdx-rdf",
        6 => "spdx-tag-value",
        7 => "spdx-yaml",
        8 => "syft-json",
        _ => "unknown",
    }
    .to_string()
}

/// One data object's descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    pub data_type: DataType,
    pub id: u32,
    /// The object group, `None` when the object is in none.
    pub group: Option<u32>,
    /// What the object is linked to (a signature to the object or group it
    /// signs).
    pub link: Option<Link>,
    /// Where its data starts in the file, and how many bytes it has.
    pub offset: u64,
    pub size: u64,
    pub created_at: i64,
    pub modified_at: i64,
    pub name: String,
    pub extra: Extra,
}

/// A descriptor's link: to an object by ID, or to a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Link {
    Object(u32),
    Group(u32),
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Object(id) => write!(f, "{id}"),
            Self::Group(id) => write!(f, "{id} (G)"),
        }
    }
}

impl Descriptor {
    /// Parses descriptor `index` of the table (at `offset` in the file).
    /// `Ok(None)` for an unused slot. The object's bytes must lie within
    /// `file_len`.
    pub fn parse(
        bytes: &[u8],
        index: u64,
        offset: u64,
        file_len: u64,
    ) -> Result<Option<Self>, ParseSifError> {
        let bad = |why: String| ParseSifError::Descriptor { index, offset, why };
        if bytes.len() < DESCRIPTOR_LEN {
            return Err(bad(format!(
                "has {} bytes, fewer than {DESCRIPTOR_LEN}",
                bytes.len()
            )));
        }
        if bytes[4] == 0 {
            return Ok(None);
        }
        let data_type = DataType::from_raw(i32_at(bytes, 0));
        let id = u32_at(bytes, 5);
        if id == 0 {
            return Err(bad("a used descriptor has object ID 0".into()));
        }
        let raw_group = u32_at(bytes, 9);
        let group = Some(raw_group & !GROUP_MASK).filter(|g| *g != 0);
        let raw_link = u32_at(bytes, 13);
        let link = match raw_link & !GROUP_MASK {
            0 => None,
            n if raw_link & GROUP_MASK == GROUP_MASK => Some(Link::Group(n)),
            n => Some(Link::Object(n)),
        };
        let data_offset = i64_at(bytes, 17);
        let size = i64_at(bytes, 25);
        let (Ok(data_offset), Ok(size)) = (u64::try_from(data_offset), u64::try_from(size)) else {
            return Err(bad(format!(
                "object {id} has a negative offset or size ({data_offset}, {size})"
            )));
        };
        match data_offset.checked_add(size) {
            Some(end) if end <= file_len => {}
            _ => {
                return Err(bad(format!(
                    "object {id} (bytes {data_offset}..+{size}) runs past the end of the {file_len}-byte file"
                )));
            }
        }
        let extra_bytes = &bytes[201..201 + 384];
        let extra = match data_type {
            DataType::Partition => Extra::Partition {
                fs: FsType::from_raw(i32_at(extra_bytes, 0)),
                part: PartType::from_raw(i32_at(extra_bytes, 4)),
                arch: arch_name(&extra_bytes[8..11]),
            },
            DataType::Signature => {
                let entity = &extra_bytes[4..4 + ENTITY_LEN];
                let fp = &entity[..20];
                Extra::Signature {
                    hash: HashType::from_raw(i32_at(extra_bytes, 0)),
                    fingerprint: fp.iter().any(|b| *b != 0).then(|| hex::encode_upper(fp)),
                }
            }
            DataType::CryptoMessage => Extra::CryptoMessage {
                format: i32_at(extra_bytes, 0),
                message: i32_at(extra_bytes, 4),
            },
            DataType::Sbom => Extra::Sbom {
                format: sbom_format(i32_at(extra_bytes, 0)),
            },
            DataType::OciRootIndex | DataType::OciBlob => {
                let text = cstr(extra_bytes);
                let digest = text.parse::<Digest>().map_err(|e| {
                    bad(format!(
                        "object {id} has no valid OCI digest (`{}`): {e}",
                        text.escape_debug()
                    ))
                })?;
                Extra::Oci { digest }
            }
            _ => Extra::None,
        };
        Ok(Some(Self {
            data_type,
            id,
            group,
            link,
            offset: data_offset,
            size,
            created_at: i64_at(bytes, 41),
            modified_at: i64_at(bytes, 49),
            name: cstr(&bytes[73..201]),
            extra,
        }))
    }

    /// Whether this is a partition holding the primary root filesystem.
    pub fn is_primary_partition(&self) -> bool {
        matches!(
            self.extra,
            Extra::Partition {
                part: PartType::PrimarySystem,
                ..
            }
        )
    }
}

/// Checks that no two objects' data overlap each other, nor the header or
/// the descriptor table. `objects` need not be sorted.
pub fn check_layout(header: &Header, objects: &[Descriptor]) -> Result<(), ParseSifError> {
    let table_end = header.descriptors_offset + header.descriptors_total * DESCRIPTOR_LEN as u64;
    let mut spans: Vec<(u64, u64, String)> = objects
        .iter()
        .filter(|d| d.size > 0)
        .map(|d| (d.offset, d.offset + d.size, format!("object {}", d.id)))
        .collect();
    // The header and the table too, so one sweep finds every overlap.
    spans.push((0, HEADER_LEN as u64, "the header".into()));
    spans.push((
        header.descriptors_offset,
        table_end,
        "the descriptor table".into(),
    ));
    spans.sort_unstable();
    for pair in spans.windows(2) {
        let (a_start, a_end, a) = &pair[0];
        let (b_start, b_end, b) = &pair[1];
        if b_start < a_end {
            return Err(ParseSifError::Overlap {
                a: a.clone(),
                b: b.clone(),
                a_start: *a_start,
                a_end: *a_end,
                b_start: *b_start,
                b_end: *b_end,
            });
        }
    }
    let mut ids: Vec<u32> = objects.iter().map(|d| d.id).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(ParseSifError::Descriptor {
            index: 0,
            offset: header.descriptors_offset,
            why: format!("two descriptors have object ID {}", w[0]),
        });
    }
    Ok(())
}
