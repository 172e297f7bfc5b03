//! Reading the files configuration names: only regular files, never more
//! than a cap, so `file = "/dev/zero"` or a FIFO is an error, not a hang or
//! an out-of-memory kill.

use std::io::{self, Read};
use std::path::Path;

/// The largest configuration-side file read (definition files, requirement
/// and environment files, `.condarc`, `pip.conf`, `config.json`, `.netrc`).
pub const MAX_INPUT_FILE: u64 = 16 << 20;

/// Reads `path` if it is a regular file of at most `cap` bytes. The file
/// type is checked before opening, so a FIFO never blocks.
pub fn read_regular(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let meta = fs_err::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "`{}` is not a regular file (a device, FIFO or directory is never read)\nhint: name a regular file in the configuration",
                path.display()
            ),
        ));
    }
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "`{}` is larger than {cap} bytes, more than imagelock reads from such a file\nhint: is this the file you meant? See the Limits section of the README",
                path.display()
            ),
        )
    };
    if meta.len() > cap {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    fs_err::File::open(path)?
        .take(cap + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_to_string(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, cap)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("`{}` is not UTF-8 text", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_directories_are_refused() {
        let err = read_regular(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        assert!(read_regular(dir.path(), 1024).is_err());
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return;
        }
        let err = read_regular(&fifo, 1024).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn caps_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        fs_err::write(&f, vec![b'a'; 2048]).unwrap();
        assert!(
            read_regular(&f, 1024)
                .unwrap_err()
                .to_string()
                .contains("larger than")
        );
        assert_eq!(read_regular(&f, 4096).unwrap().len(), 2048);
    }
}
