//! Project pages of the simple repository API: PEP 691 JSON (with PEP 700,
//! 658/714 and 592 keys) and the PEP 503 HTML it replaced.

use reqwest::Url;
use serde::Deserialize;

use super::fetch::redact;
use crate::solve::python::DistFile;

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Option<Yanked>,
    upload_time: Option<String>,
    size: Option<u64>,
    /// PEP 714 name; `dist-info-metadata` is the older spelling.
    core_metadata: Option<MetaKey>,
    data_dist_info_metadata: Option<MetaKey>,
    dist_info_metadata: Option<MetaKey>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Yanked {
    Flag(bool),
    Reason(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MetaKey {
    Flag(bool),
    Hashes(std::collections::BTreeMap<String, String>),
}

fn meta_key(k: Option<MetaKey>) -> Option<Option<String>> {
    match k? {
        MetaKey::Flag(false) => None,
        MetaKey::Flag(true) => Some(None),
        MetaKey::Hashes(h) => Some(h.get("sha256").cloned()),
    }
}

/// Parses a PEP 691 JSON page fetched from `base` (the page URL, ending in
/// `/`); relative file URLs are resolved against it.
pub fn parse_json(body: &[u8], base: &Url) -> Result<Vec<DistFile>, String> {
    let page: JsonPage = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(page
        .files
        .into_iter()
        .filter_map(|f| {
            let url = base.join(&f.url).ok()?;
            Some(DistFile {
                sha256: f.hashes.get("sha256").cloned(),
                requires_python: f.requires_python.filter(|r| !r.trim().is_empty()),
                yanked: match f.yanked {
                    Some(Yanked::Flag(true)) => Some(String::new()),
                    Some(Yanked::Reason(r)) => Some(r),
                    _ => None,
                },
                upload_time: f.upload_time,
                size: f.size,
                core_metadata: meta_key(f.core_metadata)
                    .or_else(|| meta_key(f.data_dist_info_metadata))
                    .or_else(|| meta_key(f.dist_info_metadata)),
                url: redact(url.as_str()),
                filename: f.filename,
            })
        })
        .collect())
}

/// Parses a PEP 503 HTML page: one `<a>` per file.
pub fn parse_html(body: &str, base: &Url) -> Vec<DistFile> {
    let mut out = Vec::new();
    let lower = body.to_ascii_lowercase();
    let mut rest = 0;
    while let Some(start) = lower[rest..].find("<a ").map(|i| i + rest) {
        let Some(tag_end) = lower[start..].find('>').map(|i| i + start) else {
            break;
        };
        let Some(close) = lower[tag_end..].find("</a>").map(|i| i + tag_end) else {
            break;
        };
        let attrs = attributes(&body[start + 3..tag_end]);
        let text = unescape(body[tag_end + 1..close].trim());
        rest = close + 4;
        let Some(href) = attrs.iter().find(|(k, _)| k == "href").map(|(_, v)| v) else {
            continue;
        };
        let Ok(url) = base.join(href) else { continue };
        let (url, fragment) = {
            let mut u = url.clone();
            u.set_fragment(None);
            (u, url.fragment().map(str::to_string))
        };
        let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        let sha256 = fragment.and_then(|f| f.strip_prefix("sha256=").map(str::to_string));
        let meta = get("data-core-metadata").or_else(|| get("data-dist-info-metadata"));
        out.push(DistFile {
            filename: if text.is_empty() {
                url.path_segments()
                    .and_then(|mut s| s.next_back())
                    .unwrap_or_default()
                    .to_string()
            } else {
                text
            },
            url: redact(url.as_str()),
            sha256,
            requires_python: get("data-requires-python").filter(|r| !r.trim().is_empty()),
            yanked: get("data-yanked"),
            upload_time: get("data-upload-time"),
            size: None,
            core_metadata: meta.and_then(|m| match m.as_str() {
                "false" => None,
                "true" | "" => Some(None),
                v => Some(v.strip_prefix("sha256=").map(str::to_string)),
            }),
        });
    }
    out
}

fn attributes(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = rest[..key_end].to_ascii_lowercase();
        rest = rest[key_end..].trim_start();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (value, next) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let end = after[1..].find(q).map_or(after.len(), |i| i + 1);
                    (&after[1..end], after.get(end + 1..).unwrap_or_default())
                }
                _ => {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            out.push((key, unescape(value)));
            rest = next.trim_start();
        } else if !key.is_empty() {
            out.push((key, String::new()));
        } else {
            break;
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_page() {
        let base = Url::parse("https://u:p@idx.example/simple/demo/").unwrap();
        let files = parse_html(
            r#"<html><body>
<a href="../../files/demo-1.0-py3-none-any.whl#sha256=abc" data-requires-python="&gt;=3.8" data-dist-info-metadata="sha256=def">demo-1.0-py3-none-any.whl</a><br/>
<a href="https://other.example/demo-0.9.tar.gz" data-yanked="">demo-0.9.tar.gz</a>
</body></html>"#,
            &base,
        );
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[0].url,
            "https://idx.example/files/demo-1.0-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some("abc"));
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(files[0].core_metadata, Some(Some("def".into())));
        assert_eq!(files[1].yanked.as_deref(), Some(""));
    }

    #[test]
    fn json_page() {
        let base = Url::parse("file:///idx/simple/demo/").unwrap();
        let files = parse_json(
            br#"{"meta":{"api-version":"1.1"},"name":"demo","versions":["1.0"],"files":[
{"filename":"demo-1.0.tar.gz","url":"../../packages/demo-1.0.tar.gz","hashes":{"sha256":"aa"},"requires-python":"","yanked":"bad","upload-time":"2024-01-01T00:00:00Z","size":10,"core-metadata":false}]}"#,
            &base,
        )
        .unwrap();
        assert_eq!(files[0].url, "file:///idx/packages/demo-1.0.tar.gz");
        assert_eq!(files[0].yanked.as_deref(), Some("bad"));
        assert_eq!(files[0].requires_python, None);
        assert_eq!(files[0].core_metadata, None);
    }
}
