//! `WWW-Authenticate` (RFC 9110 §11.6.1): one header may hold several challenges, each an
//! auth-scheme followed by auth-params (`name=token` or `name="quoted string"`). The send
//! loop reads the `Bearer` challenge (RFC 6750 §3), DPoP reads its own (RFC 9449 §9), the
//! diagnosis reads both: one parser serves them all.

/// One challenge: its scheme and its auth-params in order, names lower-cased (they are
/// case-insensitive), values as sent (quoted strings unescaped).
pub(crate) struct Challenge {
    pub(crate) scheme: String,
    pub(crate) params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of the auth-param `name` (lower case).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every challenge in a `WWW-Authenticate` value. Malformed input yields what could be read;
/// nothing here fails or panics. A token68 (`Basic abc==`) reads as a parameter of its
/// challenge, which no caller asks for.
pub(crate) fn parse(header: &str) -> Vec<Challenge> {
    let mut challenges: Vec<Challenge> = Vec::new();
    let mut chars = header.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let word: String =
            std::iter::from_fn(|| chars.next_if(|c| !matches!(c, '=' | ',') && !c.is_whitespace()))
                .collect();
        if word.is_empty() {
            // Only a stray `=` (of a token68) can stop a word here; skip it.
            if chars.next().is_none() {
                return challenges;
            }
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            // A word without `=` starts a new challenge: its auth-scheme.
            challenges.push(Challenge {
                scheme: word,
                params: Vec::new(),
            });
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| {
                chars.next_if(|c| *c != ',' && !c.is_whitespace())
            }));
        }
        // Parameters before any scheme belong to no challenge and are dropped.
        if let Some(challenge) = challenges.last_mut() {
            challenge.params.push((word.to_ascii_lowercase(), value));
        }
    }
}

/// The params of the first challenge of scheme `scheme` (case-insensitive), if any.
pub(crate) fn params_of(header: &str, scheme: &str) -> Option<Vec<(String, String)>> {
    parse(header)
        .into_iter()
        .find(|c| c.scheme.eq_ignore_ascii_case(scheme))
        .map(|c| c.params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_challenges_in_one_header() {
        let all = parse(
            r#"Basic realm="api", DPoP algs="ES256 PS256", error="use_dpop_nonce", Bearer error=invalid_token, error_description="a \"quoted\", value""#,
        );
        let schemes: Vec<&str> = all.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Basic", "DPoP", "Bearer"]);
        assert_eq!(all[0].param("realm"), Some("api"));
        assert_eq!(all[1].param("algs"), Some("ES256 PS256"));
        assert_eq!(all[1].param("error"), Some("use_dpop_nonce"));
        assert_eq!(all[2].param("error"), Some("invalid_token"));
        assert_eq!(
            all[2].param("error_description"),
            Some(r#"a "quoted", value"#)
        );
    }

    #[test]
    fn names_are_case_insensitive_and_odd_input_is_survived() {
        let bearer = params_of(
            r#"bearer ERROR = "insufficient_scope", Scope=read"#,
            "Bearer",
        )
        .expect("a Bearer challenge");
        assert_eq!(bearer[0], ("error".into(), "insufficient_scope".into()));
        assert_eq!(bearer[1], ("scope".into(), "read".into()));
        assert!(params_of("Basic realm=x", "Bearer").is_none());
        for odd in [
            "",
            "=",
            ",,,",
            "Bearer error=\"unterminated",
            "x=y",
            "Basic abc==",
            "\u{0}=",
        ] {
            let _ = parse(odd);
        }
        assert!(parse("x=y").is_empty());
    }
}
