//! `Location` resolution for redirects (RFC 9110 §10.2.2, RFC 3986 §5.2 for the reference
//! forms an API actually sends).

/// Resolve a `Location` against the request URL (absolute, scheme-relative, absolute-path
/// or relative-path references).
pub(crate) fn resolve(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if location.contains("://") {
        return Some(location.to_string());
    }
    let scheme_end = base.find("://")? + 3;
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{}{rest}", &base[..scheme_end]));
    }
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        return Some(format!("{}{location}", &base[..path_start]));
    }
    let path = base[path_start..].split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    Some(format!("{}{dir}{location}", &base[..path_start]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_resolution() {
        let base = "https://api.example.com/v1/items?x=1";
        assert_eq!(
            resolve(base, "https://other/x").as_deref(),
            Some("https://other/x")
        );
        assert_eq!(
            resolve(base, "//cdn.example.com/a").as_deref(),
            Some("https://cdn.example.com/a")
        );
        assert_eq!(
            resolve(base, "/v2/items").as_deref(),
            Some("https://api.example.com/v2/items")
        );
        assert_eq!(
            resolve(base, "other").as_deref(),
            Some("https://api.example.com/v1/other")
        );
        assert_eq!(resolve("https://h", "p").as_deref(), Some("https://h/p"));
    }
}
