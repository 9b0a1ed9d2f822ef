//! `Location` resolution for redirects: a `Location` is a URI reference resolved against the
//! request URL (RFC 9110 §10.2.2) by the algorithm of RFC 3986 §5.2, strict form (a
//! reference with a scheme is absolute even when it is the base's scheme). Whether the
//! result may be requested (http/https, origin) is for the caller to check.

/// A URI reference split into its five components by the regular expression of RFC 3986
/// Appendix B; `None` is an undefined component, `Some("")` an empty one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

fn split(reference: &str) -> Parts<'_> {
    let (rest, fragment) = match reference.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (reference, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    // `^(([^:/?#]+):)?`: a scheme is everything before the first ':' if no '/' comes first
    // (so `/path?next=https://other` and `?page=2` have none).
    let (scheme, rest) = match rest.find([':', '/']) {
        Some(at) if at > 0 && rest.as_bytes()[at] == b':' => (Some(&rest[..at]), &rest[at + 1..]),
        _ => (None, rest),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (Some(&after[..end]), &after[end..])
        }
        None => (None, rest),
    };
    Parts {
        scheme,
        authority,
        path,
        query,
        fragment,
    }
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output = String::with_capacity(path.len());
    let pop_last = |output: &mut String| {
        let cut = output.rfind('/').unwrap_or(0);
        output.truncate(cut);
    };
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = &input[3..];
            pop_last(&mut output);
        } else if input == "/.." {
            input = "/";
            pop_last(&mut output);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| start + i);
            output.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    output
}

/// RFC 3986 §5.2.3.
fn merge(base: &Parts<'_>, path: &str) -> String {
    if base.authority.is_some() && base.path.is_empty() {
        return format!("/{path}");
    }
    match base.path.rfind('/') {
        Some(at) => format!("{}{path}", &base.path[..=at]),
        None => path.to_string(),
    }
}

/// Resolve `location` against `base` (an absolute URI) by RFC 3986 §5.2.2 and recompose it
/// (§5.3). `None` when `base` has no scheme.
pub(crate) fn resolve(base: &str, location: &str) -> Option<String> {
    let base = split(base);
    let scheme = base.scheme?;
    let r = split(location.trim_matches([' ', '\t']));
    let (scheme, authority, path, query) = if let Some(s) = r.scheme {
        (s, r.authority, remove_dot_segments(r.path), r.query)
    } else if r.authority.is_some() {
        (scheme, r.authority, remove_dot_segments(r.path), r.query)
    } else if r.path.is_empty() {
        (
            scheme,
            base.authority,
            base.path.to_string(),
            r.query.or(base.query),
        )
    } else if r.path.starts_with('/') {
        (scheme, base.authority, remove_dot_segments(r.path), r.query)
    } else {
        let merged = merge(&base, r.path);
        (
            scheme,
            base.authority,
            remove_dot_segments(&merged),
            r.query,
        )
    };
    let mut target = format!("{scheme}:");
    if let Some(authority) = authority {
        target.push_str("//");
        target.push_str(authority);
    }
    target.push_str(&path);
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    if let Some(fragment) = r.fragment {
        target.push('#');
        target.push_str(fragment);
    }
    Some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://a/b/c/d;p?q";

    /// RFC 3986 §5.4.1, every example.
    const NORMAL: [(&str, &str); 23] = [
        ("g:h", "g:h"),
        ("g", "http://a/b/c/g"),
        ("./g", "http://a/b/c/g"),
        ("g/", "http://a/b/c/g/"),
        ("/g", "http://a/g"),
        ("//g", "http://g"),
        ("?y", "http://a/b/c/d;p?y"),
        ("g?y", "http://a/b/c/g?y"),
        ("#s", "http://a/b/c/d;p?q#s"),
        ("g#s", "http://a/b/c/g#s"),
        ("g?y#s", "http://a/b/c/g?y#s"),
        (";x", "http://a/b/c/;x"),
        ("g;x", "http://a/b/c/g;x"),
        ("g;x?y#s", "http://a/b/c/g;x?y#s"),
        ("", "http://a/b/c/d;p?q"),
        (".", "http://a/b/c/"),
        ("./", "http://a/b/c/"),
        ("..", "http://a/b/"),
        ("../", "http://a/b/"),
        ("../g", "http://a/b/g"),
        ("../..", "http://a/"),
        ("../../", "http://a/"),
        ("../../g", "http://a/g"),
    ];

    /// RFC 3986 §5.4.2, every example (strict parser for the last one).
    const ABNORMAL: [(&str, &str); 19] = [
        ("../../../g", "http://a/g"),
        ("../../../../g", "http://a/g"),
        ("/./g", "http://a/g"),
        ("/../g", "http://a/g"),
        ("g.", "http://a/b/c/g."),
        (".g", "http://a/b/c/.g"),
        ("g..", "http://a/b/c/g.."),
        ("..g", "http://a/b/c/..g"),
        ("./../g", "http://a/b/g"),
        ("./g/.", "http://a/b/c/g/"),
        ("g/./h", "http://a/b/c/g/h"),
        ("g/../h", "http://a/b/c/h"),
        ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
        ("g;x=1/../y", "http://a/b/c/y"),
        ("g?y/./x", "http://a/b/c/g?y/./x"),
        ("g?y/../x", "http://a/b/c/g?y/../x"),
        ("g#s/./x", "http://a/b/c/g#s/./x"),
        ("g#s/../x", "http://a/b/c/g#s/../x"),
        ("http:g", "http:g"),
    ];

    #[test]
    fn rfc3986_normal_examples() {
        for (reference, want) in NORMAL {
            assert_eq!(
                resolve(BASE, reference).as_deref(),
                Some(want),
                "{reference:?}"
            );
        }
    }

    #[test]
    fn rfc3986_abnormal_examples() {
        for (reference, want) in ABNORMAL {
            assert_eq!(
                resolve(BASE, reference).as_deref(),
                Some(want),
                "{reference:?}"
            );
        }
    }

    #[test]
    fn locations_apis_send() {
        let base = "https://api.example.com/v1/items?page=1";
        for (location, want) in [
            // A `://` inside the query does not make a reference absolute.
            (
                "/path?next=https://other",
                "https://api.example.com/path?next=https://other",
            ),
            // A query-only reference keeps the whole path.
            ("?page=2", "https://api.example.com/v1/items?page=2"),
            ("../x", "https://api.example.com/x"),
            ("x", "https://api.example.com/v1/x"),
            ("https://other.example/a", "https://other.example/a"),
            ("//cdn.example.com/a", "https://cdn.example.com/a"),
            (" /v2/items ", "https://api.example.com/v2/items"),
        ] {
            assert_eq!(
                resolve(base, location).as_deref(),
                Some(want),
                "{location:?}"
            );
        }
        assert_eq!(resolve("https://h", "p").as_deref(), Some("https://h/p"));
        assert_eq!(resolve("https://h", "?q").as_deref(), Some("https://h?q"));
        assert_eq!(resolve("no-scheme/path", "p"), None);
    }
}
