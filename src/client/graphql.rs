//! GraphQL servers answer an expired token with HTTP 200 and an `UNAUTHENTICATED` error
//! code (the Apollo convention); with `graphql_auth_errors` `send` treats that as a 401.

/// Whether an answer with `status` and `body` is a GraphQL `UNAUTHENTICATED` error.
pub(super) fn is_graphql_unauthenticated(status: u16, body: &[u8]) -> bool {
    if status != 200 {
        return false;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    json.get("errors")
        .and_then(|e| e.as_array())
        .is_some_and(|errors| {
            errors.iter().any(|e| {
                e.pointer("/extensions/code")
                    .and_then(|c| c.as_str())
                    .is_some_and(|c| c.eq_ignore_ascii_case("UNAUTHENTICATED"))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_unauthenticated_detection() {
        let mk = |status, body: &'static str| (status, body.as_bytes());
        let is = |(status, body): (u16, &[u8])| is_graphql_unauthenticated(status, body);
        assert!(is(mk(
            200,
            r#"{"data":null,"errors":[{"extensions":{"code":"UNAUTHENTICATED"}}]}"#
        )));
        assert!(!is(mk(
            200,
            r#"{"data":{},"errors":[{"extensions":{"code":"FORBIDDEN"}}]}"#
        )));
        assert!(!is(mk(200, "not json")));
        assert!(!is(mk(
            500,
            r#"{"errors":[{"extensions":{"code":"UNAUTHENTICATED"}}]}"#
        )));
    }
}
