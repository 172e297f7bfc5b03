//! Secrets out of URLs before they are written anywhere (locks, exports,
//! messages): conda channel tokens and index passwords.

/// `url` without its secrets, keeping what identifies the channel or index:
/// userinfo (`user:password@`, `__token__:…@`) is dropped, as pip shows
/// index URLs, and a conda token path segment becomes `/t/<TOKEN>/`, as
/// conda masks it.
pub fn redact_url(url: &str) -> String {
    let out = match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{tail}")
        }
        None => url.to_string(),
    };
    mask_conda_token(&out)
}

const MASK: &str = "<TOKEN>";

fn mask_conda_token(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find("/t/") {
        let after = &rest[i + 3..];
        let end = after.find('/').unwrap_or(after.len());
        let token = &after[..end];
        // rattler masks a channel's token as `********` in the channel
        // names it gives back: that becomes the one mask too.
        let is_token = !token.is_empty()
            && token != MASK
            && (token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                || token.bytes().all(|b| b == b'*'));
        out.push_str(&rest[..i + 3]);
        if is_token {
            out.push_str(MASK);
        } else {
            out.push_str(token);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `text` (a message) with every URL in it passed through [`redact_url`]:
/// the last line of defence before anything is printed.
pub fn redact_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\'' | '<' | '>'))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Whether `url` carries a secret [`redact_url`] would remove.
pub fn has_secret(url: &str) -> bool {
    redact_url(url) != url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conda_tokens_are_masked() {
        assert_eq!(
            redact_url("https://conda.anaconda.org/t/ab-12_cd/my-org/linux-64/x-1-0.conda"),
            "https://conda.anaconda.org/t/<TOKEN>/my-org/linux-64/x-1-0.conda"
        );
        assert_eq!(
            redact_url("https://repo.example/t/tok/channel"),
            "https://repo.example/t/<TOKEN>/channel"
        );
        assert_eq!(
            redact_url("https://repo.example/t/********/channel"),
            "https://repo.example/t/<TOKEN>/channel"
        );
        let masked = "https://conda.anaconda.org/t/<TOKEN>/my-org";
        assert_eq!(redact_url(masked), masked);
        assert_eq!(
            redact_url("https://conda.anaconda.org/conda-forge"),
            "https://conda.anaconda.org/conda-forge"
        );
    }

    #[test]
    fn urls_in_messages_are_redacted() {
        assert_eq!(
            redact_text(
                "cannot fetch `https://u:pw@x.example/simple/a/`: 404\nhint: see https://conda.anaconda.org/t/abc/org"
            ),
            "cannot fetch `https://x.example/simple/a/`: 404\nhint: see https://conda.anaconda.org/t/<TOKEN>/org"
        );
        assert_eq!(redact_text("no urls here"), "no urls here");
    }

    #[test]
    fn userinfo_is_dropped() {
        assert_eq!(
            redact_url("https://user:pa%40ss@pypi.example/simple/"),
            "https://pypi.example/simple/"
        );
        assert_eq!(
            redact_url("https://__token__:pypi-AgE@pypi.example:8443/simple?x=1"),
            "https://pypi.example:8443/simple?x=1"
        );
        assert_eq!(
            redact_url("https://pypi.org/simple/a@b/"),
            "https://pypi.org/simple/a@b/"
        );
        assert_eq!(redact_url("conda-forge"), "conda-forge");
        assert!(has_secret("https://u:p@x.example/"));
        assert!(!has_secret("https://x.example/"));
    }
}
