//! Shell glob patterns as `${V#p}`, `${V%p}` and `${V/p/r}` use them
//! (`*` and `?`; other characters match themselves).

/// Removes the shortest or longest prefix (or suffix) matching `pattern`.
pub fn trim(value: &str, pattern: &str, prefix: bool, longest: bool) -> String {
    let cuts: Vec<usize> = value
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(value.len()))
        .collect();
    let candidates: Box<dyn Iterator<Item = &usize>> = if prefix == longest {
        Box::new(cuts.iter().rev())
    } else {
        Box::new(cuts.iter())
    };
    for &cut in candidates {
        let (part, rest) = if prefix {
            (&value[..cut], &value[cut..])
        } else {
            (&value[cut..], &value[..cut])
        };
        if glob(pattern, part) {
            return rest.to_string();
        }
    }
    value.to_string()
}

/// The longest value a glob replacement is tried on: it is quadratic.
const MAX_GLOB_REPLACE: usize = 1 << 16;

/// Replaces the first (or every) longest match of `pattern` with `with`.
/// `None` when the result would pass `limit` characters, or a glob pattern
/// meets a value too long to search.
pub fn replace(value: &str, pattern: &str, with: &str, all: bool, limit: usize) -> Option<String> {
    if pattern.is_empty() {
        return Some(value.to_string());
    }
    let out = if !pattern.contains(['*', '?']) {
        let n = value.matches(pattern).count();
        let n = if all { n } else { n.min(1) };
        let len = value.len() - n * pattern.len() + n * with.len();
        if len > limit {
            return None;
        }
        if all {
            value.replace(pattern, with)
        } else {
            value.replacen(pattern, with, 1)
        }
    } else {
        if value.len() > MAX_GLOB_REPLACE {
            return None;
        }
        let idx: Vec<usize> = value
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(value.len()))
            .collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i < idx.len() - 1 {
            let start = idx[i];
            let end = (!replaced || all)
                .then(|| {
                    (i + 1..idx.len())
                        .rev()
                        .find(|&j| glob(pattern, &value[start..idx[j]]))
                })
                .flatten();
            match end {
                Some(j) => {
                    out.push_str(with);
                    replaced = true;
                    i = j;
                }
                None => {
                    out.push_str(&value[start..idx[i + 1]]);
                    i += 1;
                }
            }
            if out.len() > limit {
                return None;
            }
        }
        out
    };
    Some(out)
}

/// Whether `text` matches the whole of `pattern`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking over the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_replaces_as_bash() {
        assert_eq!(trim("1.26.4", ".*", false, false), "1.26");
        assert_eq!(trim("1.26.4", ".*", false, true), "1");
        assert_eq!(trim("a/b/c", "*/", true, true), "c");
        assert_eq!(trim("a/b/c", "*/", true, false), "b/c");
        assert_eq!(replace("12.2.1", ".", "-", true, 100).unwrap(), "12-2-1");
        assert_eq!(replace("12.2.1", ".", "-", false, 100).unwrap(), "12-2.1");
        assert_eq!(replace("cuda-12", "c*-", "", false, 100).unwrap(), "12");
        assert_eq!(replace("aaaa", "a", "bbbb", true, 8), None);
    }
}
