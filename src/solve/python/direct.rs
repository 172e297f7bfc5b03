//! Requirements that name an artifact instead of versions, as pip accepts
//! them on a command line or in a requirements file: `pkg @ URL`, bare
//! wheel or sdist URLs, `git+…#egg=pkg`, local paths.

use std::str::FromStr;

use pep508_rs::{PackageName, Requirement, VersionOrUrl};

/// What kind of artifact a direct requirement names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectKind {
    /// A wheel or sdist at an `http(s)://` URL: fetched and hashed.
    Archive,
    /// A VCS repository (`git+`, `hg+`, `svn+`, `bzr+`).
    Vcs,
    /// A directory or file inside the image (a path or `file:` URL).
    Path,
}

/// A VCS or path requirement: recorded as given; neither its content nor
/// (without a build) its dependencies are known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnbuiltDist {
    pub kind: DirectKind,
    /// VCS: the repository URL with its `git+` scheme, without `@rev` and
    /// `#egg=`; path: the path or `file:` URL as given.
    pub url: String,
    /// VCS: the revision after `@`, as requested.
    pub revision: Option<String>,
    /// VCS: the revision, when it is a full commit id (40 or 64 hex digits).
    pub commit: Option<String>,
    /// Known from a wheel or sdist file name (`./dist/pkg-1.0.tar.gz`).
    pub version: Option<pep440_rs::Version>,
}

/// A requirement as the solver reads it.
#[derive(Clone, Debug)]
pub struct ParsedRequirement {
    /// As written (for the lock's `requested` and for rewrite).
    pub written: String,
    /// The PEP 508 form (`pkg @ URL` for a bare URL).
    pub requirement: Requirement,
    pub direct: Option<(DirectKind, String)>,
}

/// Why a requirement could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectError {
    Invalid(String),
    NoName(String),
}

const VCS_SCHEMES: [&str; 4] = ["git+", "hg+", "svn+", "bzr+"];

fn is_vcs(url: &str) -> bool {
    VCS_SCHEMES.iter().any(|s| url.starts_with(s))
}

fn is_path(text: &str) -> bool {
    text == "."
        || text == ".."
        || text.starts_with("./")
        || text.starts_with("../")
        || text.starts_with('/')
        || text.starts_with('~')
        || text.starts_with("file:")
}

/// The kind of a URL or path in a requirement.
pub fn kind_of(url: &str) -> DirectKind {
    if is_vcs(url) {
        DirectKind::Vcs
    } else if is_path(url) || !url.contains("://") {
        DirectKind::Path
    } else {
        DirectKind::Archive
    }
}

/// The project name a wheel or sdist file name starts with.
fn name_from_filename(filename: &str) -> Option<&str> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        return stem.split('-').next().filter(|n| !n.is_empty());
    }
    let stem = [".tar.gz", ".zip", ".tar.bz2", ".tgz"]
        .iter()
        .find_map(|e| filename.strip_suffix(e))?;
    stem.rsplit_once('-')
        .map(|(n, _)| n)
        .filter(|n| !n.is_empty())
}

/// `#egg=name` (pip's legacy way to name a VCS or path requirement).
fn egg_name(url: &str) -> Option<&str> {
    let (_, fragment) = url.split_once('#')?;
    fragment
        .split('&')
        .find_map(|p| p.strip_prefix("egg="))
        .map(|n| n.split(['[', '=', '<', '>']).next().unwrap_or(n))
        .filter(|n| !n.is_empty())
}

/// Reads one requirement as pip would: PEP 508, or a bare URL or path whose
/// project name the file name or `#egg=` gives.
pub fn parse(text: &str) -> Result<ParsedRequirement, DirectError> {
    let written = text.trim().to_string();
    let pep508 =
        |t: &str| Requirement::from_str(t).map_err(|e| DirectError::Invalid(e.message.to_string()));
    let bare = written.contains("://") || is_vcs(&written) || is_path(&written);
    let requirement = if bare && !written.contains(" @ ") {
        let url = written.split(';').next().unwrap_or(&written).trim();
        let last = url
            .split(['#', '?'])
            .next()
            .unwrap_or(url)
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let name = egg_name(url)
            .or_else(|| (!is_vcs(url)).then(|| name_from_filename(last)).flatten())
            .ok_or_else(|| DirectError::NoName(written.clone()))?;
        let name = PackageName::from_str(name).map_err(|e| DirectError::Invalid(e.to_string()))?;
        let url = match kind_of(url) {
            // PEP 508 needs a URL; a path is kept as written in `direct`.
            DirectKind::Path => format!("file:///{}", last.trim_start_matches('/')),
            _ => url.to_string(),
        };
        let mut req = pep508(&format!("{name} @ {url}"))?;
        if let Some((_, marker)) = written.split_once(';') {
            req = pep508(&format!("{name} @ {url} ; {}", marker.trim()))?;
        }
        let given = written.split(';').next().unwrap_or(&written).trim();
        return Ok(ParsedRequirement {
            direct: Some((kind_of(given), given.to_string())),
            written,
            requirement: req,
        });
    } else {
        pep508(&written)?
    };
    let direct = match &requirement.version_or_url {
        Some(VersionOrUrl::Url(u)) => {
            let given = u.given().unwrap_or(u.raw().as_str()).to_string();
            Some((kind_of(&given), given))
        }
        _ => None,
    };
    Ok(ParsedRequirement {
        written,
        requirement,
        direct,
    })
}

/// A VCS or path requirement as the lock records it.
pub fn unbuilt(kind: DirectKind, given: &str) -> UnbuiltDist {
    let mut version = None;
    if kind == DirectKind::Path {
        let last = given.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        if let Some(name) = name_from_filename(last) {
            let rest = last[name.len()..].trim_start_matches('-');
            let v = rest.split('-').next().unwrap_or(rest);
            let v = [".tar.gz", ".zip", ".tar.bz2", ".tgz"]
                .iter()
                .find_map(|e| v.strip_suffix(e))
                .unwrap_or(v);
            version = pep440_rs::Version::from_str(v).ok();
        }
        return UnbuiltDist {
            kind,
            url: given.to_string(),
            revision: None,
            commit: None,
            version,
        };
    }
    // `git+https://host/o/r.git@v1.0#egg=r&subdirectory=x`
    let (base, fragment) = match given.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (given, None),
    };
    let keep: Vec<&str> = fragment
        .map(|f| f.split('&').filter(|p| !p.starts_with("egg=")).collect())
        .unwrap_or_default();
    // The revision follows the last `@` of the path (not the one of
    // `user@host`).
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let (repo, revision) = match base[path_start..].rfind('@') {
        Some(i) => (
            &base[..path_start + i],
            Some(base[path_start + i + 1..].to_string()),
        ),
        None => (base, None),
    };
    let mut url = repo.to_string();
    if !keep.is_empty() {
        url.push('#');
        url.push_str(&keep.join("&"));
    }
    let commit = revision
        .as_ref()
        .filter(|r| (r.len() == 40 || r.len() == 64) && r.chars().all(|c| c.is_ascii_hexdigit()))
        .map(|r| r.to_ascii_lowercase());
    UnbuiltDist {
        kind,
        url,
        revision,
        commit,
        version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(text: &str) -> (String, Option<(DirectKind, String)>) {
        let p = parse(text).unwrap();
        (p.requirement.name.to_string(), p.direct)
    }

    #[test]
    fn bare_urls_and_paths_are_named() {
        assert_eq!(
            direct("https://x.org/files/Demo_Pkg-1.0-py3-none-any.whl").0,
            "demo-pkg"
        );
        assert_eq!(direct("https://x.org/a-b-2.0.tar.gz").0, "a-b");
        let (name, d) = direct("git+https://github.com/o/r@v1.0#egg=tool");
        assert_eq!(name, "tool");
        assert_eq!(d.unwrap().0, DirectKind::Vcs);
        let (name, d) = direct("./wheels/demo-1.0-py3-none-any.whl");
        assert_eq!(name, "demo");
        assert_eq!(
            d,
            Some((
                DirectKind::Path,
                "./wheels/demo-1.0-py3-none-any.whl".into()
            ))
        );
        let (name, d) = direct("tool @ git+https://github.com/o/r@main");
        assert_eq!(name, "tool");
        assert_eq!(
            d,
            Some((DirectKind::Vcs, "git+https://github.com/o/r@main".into()))
        );
        assert_eq!(direct("requests>=2").1, None);
    }

    #[test]
    fn nameless_vcs_and_directories_are_refused() {
        assert!(matches!(
            parse("git+https://github.com/o/r@v1.0"),
            Err(DirectError::NoName(_))
        ));
        assert!(matches!(parse("./src"), Err(DirectError::NoName(_))));
        assert!(matches!(parse("."), Err(DirectError::NoName(_))));
        assert_eq!(direct("./src#egg=mytool").0, "mytool");
    }

    #[test]
    fn vcs_revisions_and_commits() {
        let u = unbuilt(
            DirectKind::Vcs,
            "git+ssh://git@github.com/o/r.git@v1.0#egg=r&subdirectory=py",
        );
        assert_eq!(u.url, "git+ssh://git@github.com/o/r.git#subdirectory=py");
        assert_eq!(u.revision.as_deref(), Some("v1.0"));
        assert_eq!(u.commit, None);
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let u = unbuilt(DirectKind::Vcs, &format!("git+https://h/o/r@{sha}"));
        assert_eq!(u.commit.as_deref(), Some(sha));
        let u = unbuilt(DirectKind::Vcs, "git+https://h/o/r");
        assert_eq!((u.url.as_str(), u.revision), ("git+https://h/o/r", None));
        let u = unbuilt(DirectKind::Path, "./dist/demo-2.1.tar.gz");
        assert_eq!(u.version.unwrap().to_string(), "2.1");
    }
}
