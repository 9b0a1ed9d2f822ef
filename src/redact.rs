//! Server text made fit for a message: every piece of text a server sent that ends up in an
//! error message, an [`crate::Error`] field, a `Debug`/`Display` or an event goes through a
//! [`Redactor`] and comes out as a [`Quoted`] — scrubbed of what the request carried and
//! clipped to [`QUOTE_LIMIT`] characters.
//!
//! What is scrubbed, wherever it appears in the text:
//! - each value the redactor was given (the client secret, the client assertion, the
//!   access token a request carried), in every encoding a server echoing a request could
//!   use: as is, percent-encoded with upper- or lower-case hex (in part or in full), `+` for
//!   a space, JSON string escapes (`\"`, `\/`, `\u00XX`), in any mix;
//! - for a secret, also the base64 forms a server could echo: the `Basic` credentials as
//!   sent, and re-encoded from the decoded `id:secret` (standard or URL-safe alphabet, with
//!   or without padding);
//! - the value of any `access_token`, `refresh_token` or `id_token` member, in JSON
//!   (`"access_token": "…"`, also inside an escaped JSON string) or form/query syntax
//!   (`access_token=…`), whoever issued it.
//!
//! Control characters and runs of white space become one space, so a quoted HTML page or
//! multi-line body stays one readable line.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use zeroize::Zeroizing;

/// The most characters a quotation holds, its clip marker included.
pub(crate) const QUOTE_LIMIT: usize = 300;

/// What a scrubbed value is replaced with.
const REDACTED: &str = "[redacted]";

/// What ends a clipped quotation.
const CLIPPED: char = '…';

/// Members whose value is a credential whoever sent it.
const TOKEN_MEMBERS: [&[u8]; 3] = [b"access_token", b"refresh_token", b"id_token"];

/// Server text after a [`Redactor`] has scrubbed and clipped it: at most [`QUOTE_LIMIT`]
/// characters, on one line. Only [`Redactor::quote`] makes one, so a field typed `Quoted`
/// (the OAuth `error`, `error_description`, a required scope) cannot hold raw server text.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Quoted(String);

impl Quoted {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Knows what one exchange carried (secret, assertion, token) and keeps it out of any text
/// that exchange's answer puts into a message. The values are held in zeroizing buffers.
#[derive(Default)]
pub(crate) struct Redactor {
    /// Scrubbed as they are (in every spelling [`units`] reads).
    needles: Vec<Zeroizing<Vec<u8>>>,
    /// Values whose base64 forms are scrubbed too. Encoding them is most of what making a
    /// redactor costs, and an exchange that succeeds quotes nothing: they are encoded by
    /// the first scan, into `derived`.
    pending: Vec<Pending>,
    derived: OnceCell<Vec<Zeroizing<Vec<u8>>>>,
}

/// A value whose scrubbed forms are made when a text is first scanned.
enum Pending {
    /// Its base64 forms.
    Base64(Zeroizing<Vec<u8>>),
    /// `Basic` credentials as sent: the base64 forms of what they decode to.
    Basic(Zeroizing<Vec<u8>>),
}

impl Redactor {
    /// A redactor that knows no value yet; it still clips and scrubs token members.
    pub(crate) fn new() -> Redactor {
        Redactor::default()
    }

    /// The client secret of `client_id`, and the `Basic` header value it was sent in, if
    /// it was sent that way.
    pub(crate) fn secret(&mut self, client_id: &str, secret: &str, basic: Option<&str>) {
        self.add(secret.as_bytes());
        self.add_base64(secret.as_bytes());
        let mut pair = Zeroizing::new(Vec::with_capacity(client_id.len() + 1 + secret.len()));
        pair.extend_from_slice(client_id.as_bytes());
        pair.push(b':');
        pair.extend_from_slice(secret.as_bytes());
        self.defer(Pending::Base64(pair));
        if let Some(value) = basic {
            // `Basic <base64>`; only the credentials part is secret.
            let sent = value
                .trim()
                .split_once(' ')
                .map_or("", |(_, credentials)| credentials.trim())
                .trim_end_matches('=');
            self.add(sent.as_bytes());
            self.defer(Pending::Basic(Zeroizing::new(sent.as_bytes().to_vec())));
        }
    }

    /// A client assertion (a signed JWT). Its signature alone is scrubbed too: with it,
    /// header and claims (which a server may also echo) make the assertion whole again.
    pub(crate) fn assertion(&mut self, assertion: &str) {
        self.add(assertion.as_bytes());
        self.add_signature(assertion);
    }

    /// An access token a request carried.
    pub(crate) fn token(&mut self, token: &str) {
        self.add(token.as_bytes());
        self.add_signature(token);
    }

    /// Another password the exchange carried (a shared store's, which its server could
    /// echo in an error).
    #[cfg(any(feature = "redis", test))]
    pub(crate) fn password(&mut self, password: &str) {
        self.add(password.as_bytes());
    }

    /// The values of the token members (`access_token`, `refresh_token`, `id_token`) of
    /// a parsed body, at any depth: quoting any other part of that body must not show them.
    pub(crate) fn members_of(&mut self, body: &serde_json::Value) {
        use serde_json::Value;
        match body {
            Value::Object(members) => {
                for (name, value) in members {
                    let is_token = TOKEN_MEMBERS
                        .iter()
                        .any(|m| name.as_bytes().eq_ignore_ascii_case(m));
                    match value {
                        Value::String(token) if is_token => self.token(token),
                        other => self.members_of(other),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.members_of(item)),
            _ => {}
        }
    }

    fn add_signature(&mut self, jwt: &str) {
        let mut parts = jwt.split('.');
        if let (Some(_), Some(_), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            // A short third part is not a signature worth the false positives.
            if signature.len() >= 16 {
                self.add(signature.as_bytes());
            }
        }
    }

    /// `value` in base64 too, once a text is scanned.
    fn add_base64(&mut self, value: &[u8]) {
        self.defer(Pending::Base64(Zeroizing::new(value.to_vec())));
    }

    fn defer(&mut self, pending: Pending) {
        self.pending.push(pending);
        // Made before this value was known: the next scan makes them again.
        self.derived = OnceCell::new();
    }

    fn add(&mut self, needle: &[u8]) {
        push_needle(&mut self.needles, needle);
    }

    /// The needles made from `pending`, made on the first call.
    fn derived(&self) -> &[Zeroizing<Vec<u8>>] {
        self.derived.get_or_init(|| {
            let mut derived = Vec::new();
            for pending in &self.pending {
                match pending {
                    Pending::Base64(value) => push_base64(&mut derived, value),
                    Pending::Basic(sent) => {
                        if let Ok(decoded) = STANDARD_NO_PAD.decode(sent).map(Zeroizing::new) {
                            push_base64(&mut derived, &decoded);
                        }
                    }
                }
            }
            derived.retain(|made| !self.needles.contains(made));
            derived
        })
    }

    /// `text` scrubbed, on one line, clipped to [`QUOTE_LIMIT`] characters (the last one
    /// `…` when something was cut). Work stops once the quotation is full, so a megabyte
    /// of server text costs no more than the part that is shown.
    pub(crate) fn quote(&self, text: &str) -> Quoted {
        let mut out = Clip::default();
        self.scan(text, &mut out);
        Quoted(out.finish())
    }

    /// [`Redactor::quote`] for bytes (invalid UTF-8 shown as U+FFFD).
    pub(crate) fn quote_bytes(&self, bytes: &[u8]) -> Quoted {
        match String::from_utf8_lossy(bytes) {
            Cow::Borrowed(text) => self.quote(text),
            Cow::Owned(text) => self.quote(&Zeroizing::new(text)),
        }
    }

    /// `text` scrubbed but otherwise unchanged: for a whole message that may contain server
    /// text (a URL taken from a `Location`) among tokenward's own words.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = Plain(String::with_capacity(text.len()));
        self.scan(text, &mut out);
        out.0
    }

    /// Feed `text` to `out` with every secret and token-member value replaced, until `out`
    /// is full.
    fn scan(&self, text: &str, out: &mut dyn Sink) {
        let bytes = text.as_bytes();
        let derived = self.derived();
        let mut i = 0;
        while i < bytes.len() {
            if let Some(end) = needle_at(&self.needles, derived, bytes, i) {
                if !out.push_str(REDACTED) {
                    return out.cut();
                }
                i = next_boundary(text, end);
                continue;
            }
            if let Some((value_start, value_end)) = token_member_at(bytes, i) {
                for ch in text[i..value_start].chars() {
                    if !out.push(ch) {
                        return out.cut();
                    }
                }
                if !out.push_str(REDACTED) {
                    return out.cut();
                }
                i = next_boundary(text, value_end);
                continue;
            }
            let ch = text[i..]
                .chars()
                .next()
                .expect("`i` is a char boundary before the end");
            if !out.push(ch) {
                return out.cut();
            }
            i += ch.len_utf8();
        }
    }
}

/// Where the longest of `needles` and `derived` that matches at `start` ends, if one does.
fn needle_at(
    needles: &[Zeroizing<Vec<u8>>],
    derived: &[Zeroizing<Vec<u8>>],
    text: &[u8],
    start: usize,
) -> Option<usize> {
    needles
        .iter()
        .chain(derived)
        .filter_map(|needle| match_at(text, start, needle))
        .max()
}

fn push_needle(needles: &mut Vec<Zeroizing<Vec<u8>>>, needle: &[u8]) {
    if !needle.is_empty() && !needles.iter().any(|n| n.as_slice() == needle) {
        needles.push(Zeroizing::new(needle.to_vec()));
    }
}

/// `value` in base64, both alphabets; without padding, which also matches the padded
/// forms (the unpadded text is their prefix).
fn push_base64(needles: &mut Vec<Zeroizing<Vec<u8>>>, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    let mut encoded = Zeroizing::new(String::new());
    STANDARD_NO_PAD.encode_string(value, &mut encoded);
    push_needle(needles, encoded.as_bytes());
    encoded.clear();
    URL_SAFE_NO_PAD.encode_string(value, &mut encoded);
    push_needle(needles, encoded.as_bytes());
}

/// The first char boundary at or after `i`.
fn next_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The ways the text at `at` can spell one byte: as itself, `+` for a space, `%XX` (either
/// case), or a JSON escape. At most two apply at any position.
fn units(text: &[u8], at: usize) -> [Option<(u8, usize)>; 2] {
    let Some(&b) = text.get(at) else {
        return [None, None];
    };
    let hex = |i: usize| text.get(i).and_then(|c| (*c as char).to_digit(16));
    let escape = match b {
        b'+' => Some((b' ', 1)),
        b'%' => match (hex(at + 1), hex(at + 2)) {
            (Some(h), Some(l)) => Some(((h * 16 + l) as u8, 3)),
            _ => None,
        },
        b'\\' => match text.get(at + 1) {
            Some(&c @ (b'"' | b'\\' | b'/')) => Some((c, 2)),
            Some(b'u') if text.get(at + 2) == Some(&b'0') && text.get(at + 3) == Some(&b'0') => {
                match (hex(at + 4), hex(at + 5)) {
                    (Some(h), Some(l)) => Some(((h * 16 + l) as u8, 6)),
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    };
    [Some((b, 1)), escape]
}

/// Whether `needle` is spelt at `start` (in any mix of the [`units`] spellings), and where
/// the longest such spelling ends.
fn match_at(text: &[u8], start: usize, needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    // Most positions fail on the first byte: decide those without allocating.
    let mut positions: Vec<usize> = units(text, start)
        .into_iter()
        .flatten()
        .filter(|(b, _)| *b == first)
        .map(|(_, len)| start + len)
        .collect();
    for &want in rest {
        if positions.is_empty() {
            return None;
        }
        let mut next = Vec::with_capacity(positions.len());
        for &at in &positions {
            for (b, len) in units(text, at).into_iter().flatten() {
                if b == want && !next.contains(&(at + len)) {
                    next.push(at + len);
                }
            }
        }
        positions = next;
    }
    positions.into_iter().max()
}

/// If a token member's name starts at `at` (`access_token`, `refresh_token`, `id_token`,
/// any case) and a value follows it (`"name": value`, `name=value`, also with escaped
/// quotes), the span of that value (inside its quotes, if quoted).
fn token_member_at(text: &[u8], at: usize) -> Option<(usize, usize)> {
    let name = TOKEN_MEMBERS.iter().find(|name| {
        text.get(at..at + name.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(name))
    })?;
    let mut p = at + name.len();
    let skip_quote = |p: &mut usize| {
        if text.get(*p..*p + 2) == Some(b"\\\"") {
            *p += 2;
        } else if matches!(text.get(*p), Some(b'"' | b'\'')) {
            *p += 1;
        }
    };
    let skip_space = |p: &mut usize| {
        while text.get(*p).is_some_and(u8::is_ascii_whitespace) {
            *p += 1;
        }
    };
    skip_quote(&mut p);
    skip_space(&mut p);
    if !matches!(text.get(p), Some(b':' | b'=')) {
        return None;
    }
    p += 1;
    skip_space(&mut p);
    let (start, end) = match text.get(p)? {
        b'\\' if text.get(p + 1) == Some(&b'"') => {
            // A JSON string inside a JSON string: ends at the next escaped quote.
            let start = p + 2;
            let end = (start..text.len())
                .find(|&i| text[i] == b'"' || text.get(i..i + 2) == Some(b"\\\""))
                .unwrap_or(text.len());
            (start, end)
        }
        b'"' => (p + 1, string_end(text, p + 1, b'"')),
        b'\'' => (p + 1, string_end(text, p + 1, b'\'')),
        b'{' | b'[' => (p, container_end(text, p)),
        _ => {
            let end = (p..text.len())
                .find(|&i| {
                    matches!(
                        text[i],
                        b'&' | b',' | b';' | b'}' | b']' | b'"' | b'\'' | b'<' | b'>'
                    ) || text[i].is_ascii_whitespace()
                })
                .unwrap_or(text.len());
            (p, end)
        }
    };
    (end > start).then_some((start, end))
}

/// The index of the unescaped `quote` that ends a string starting at `start` (or the end).
fn string_end(text: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            c if c == quote => return i,
            _ => i += 1,
        }
    }
    text.len()
}

/// The index just past the bracket that closes the object or array at `start` (or the end).
fn container_end(text: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < text.len() {
        match text[i] {
            b'"' => i = string_end(text, i + 1, b'"'),
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    text.len()
}

/// Where [`Redactor::scan`] writes; `false` from a push means "full, stop".
trait Sink {
    fn push(&mut self, ch: char) -> bool;
    fn push_str(&mut self, s: &str) -> bool;
    /// Called when a push was refused and text remains.
    fn cut(&mut self);
}

/// A quotation: one line, at most [`QUOTE_LIMIT`] characters with the clip marker.
#[derive(Default)]
struct Clip {
    out: String,
    chars: usize,
    space: bool,
    cut: bool,
}

impl Clip {
    fn room(&self, chars: usize) -> bool {
        // One character stays free for the clip marker.
        self.chars + usize::from(self.space) + chars < QUOTE_LIMIT
    }

    fn flush_space(&mut self) {
        if self.space {
            self.out.push(' ');
            self.chars += 1;
            self.space = false;
        }
    }

    fn finish(mut self) -> String {
        if self.cut {
            self.out.push(CLIPPED);
        }
        self.out
    }
}

impl Sink for Clip {
    fn push(&mut self, ch: char) -> bool {
        if ch.is_control() || ch.is_whitespace() {
            self.space = self.chars > 0;
            return true;
        }
        if !self.room(1) {
            return false;
        }
        self.flush_space();
        self.out.push(ch);
        self.chars += 1;
        true
    }

    fn push_str(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if !self.room(n) {
            return false;
        }
        self.flush_space();
        self.out.push_str(s);
        self.chars += n;
        true
    }

    fn cut(&mut self) {
        self.cut = true;
    }
}

/// A whole message, scrubbed but otherwise as it was.
struct Plain(String);

impl Sink for Plain {
    fn push(&mut self, ch: char) -> bool {
        self.0.push(ch);
        true
    }

    fn push_str(&mut self, s: &str) -> bool {
        self.0.push_str(s);
        true
    }

    fn cut(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    const SECRET: &str = "xY9#mK2$ pL8@nQ5+/%é";

    fn redactor() -> Redactor {
        let mut r = Redactor::new();
        r.secret(
            "demo-client",
            SECRET,
            Some(&basic_value("demo-client", SECRET)),
        );
        r
    }

    /// The `Basic` value RFC 6749 §2.3.1 has sent: base64 of the form-urlencoded id, `:`,
    /// and the form-urlencoded secret.
    fn basic_value(client_id: &str, secret: &str) -> String {
        let pair = format!(
            "{}:{}",
            percent(client_id, false, false),
            percent(secret, false, false)
        );
        format!("Basic {}", STANDARD.encode(pair))
    }

    fn percent(s: &str, lower: bool, plus: bool) -> String {
        s.bytes()
            .map(|b| match b {
                b' ' if plus => "+".to_string(),
                b if b.is_ascii_alphanumeric() => (b as char).to_string(),
                b if lower => format!("%{b:02x}"),
                b => format!("%{b:02X}"),
            })
            .collect()
    }

    fn assert_clean(quoted: &str, what: &str) {
        for piece in ["xY9", "pL8", "nQ5"] {
            assert!(!quoted.contains(piece), "{what}: {quoted}");
        }
        assert!(quoted.chars().count() <= QUOTE_LIMIT, "{what}");
    }

    #[test]
    fn the_secret_is_scrubbed_in_every_encoding() {
        let r = redactor();
        let basic = basic_value("demo-client", SECRET);
        let sent = basic.trim_start_matches("Basic ");
        let raw_pair = STANDARD.encode(format!("demo-client:{SECRET}"));
        let url_safe = URL_SAFE_NO_PAD.encode(format!("demo-client:{SECRET}"));
        let echoes = [
            ("raw", SECRET.to_string()),
            ("upper hex", percent(SECRET, false, false)),
            ("lower hex", percent(SECRET, true, false)),
            ("plus for space", percent(SECRET, false, true)),
            ("mixed", "xY9%23mK2$+pL8%40nQ5%2b/%25%c3%A9".to_string()),
            ("basic as sent", basic.clone()),
            ("basic payload", sent.to_string()),
            ("basic unpadded", sent.trim_end_matches('=').to_string()),
            ("basic percent-encoded", percent(sent, false, false)),
            ("basic re-encoded", raw_pair),
            ("basic url-safe", url_safe),
            (
                "json escapes",
                SECRET.replace('#', "\\u0023").replace('/', "\\/"),
            ),
        ];
        for (what, echo) in echoes {
            let quoted = r.quote(&format!("client sent <{echo}> which is wrong"));
            assert!(quoted.as_str().contains(REDACTED), "{what}: {quoted}");
            // Nothing of the echo is left but the scheme name and base64 padding.
            let rest = quoted
                .as_str()
                .replace(REDACTED, "")
                .replace("Basic ", "")
                .replace("%3D", "")
                .replace('=', "");
            assert_eq!(rest, "client sent <> which is wrong", "{what}: {quoted}");
            assert!(!r.scrub(&echo).contains(&echo), "{what}");
        }
    }

    #[test]
    fn a_secret_learnt_after_a_quotation_is_scrubbed_in_every_encoding() {
        let mut r = Redactor::new();
        assert_eq!(r.quote("nothing known yet").as_str(), "nothing known yet");
        r.secret("demo-client", SECRET, None);
        let echo = URL_SAFE_NO_PAD.encode(format!("demo-client:{SECRET}"));
        assert_eq!(r.quote(&format!("<{echo}>")).as_str(), "<[redacted]>");
    }

    #[test]
    fn token_members_are_scrubbed_whoever_issued_them() {
        let r = Redactor::new();
        let texts = [
            r#"{"access_token":"AT-1","refresh_token": "RT-2","id_token" : "ID-3","x":1}"#,
            r#"[{"ACCESS_TOKEN":"AT-1"},{"refresh_token":{"v":"RT-2"}},{"id_token":["ID-3"]}]"#,
            "access_token=AT-1&refresh_token=RT-2&id_token=ID-3&state=x",
            r#"{"error_description":"got {\"access_token\":\"AT-1\",\"id_token\":\"ID-3\"} RT-2"}"#,
        ];
        for text in texts {
            let quoted = r.quote(text);
            for value in ["AT-1", "ID-3"] {
                assert!(!quoted.as_str().contains(value), "{quoted}");
            }
            if !text.ends_with("RT-2\"}") {
                assert!(!quoted.as_str().contains("RT-2"), "{quoted}");
            }
        }
        // Quoting one member of a body: the body's tokens are known by value.
        let body = serde_json::json!({ "access_token": "AT-1", "x": [{ "id_token": "ID-3" }] });
        let mut known = Redactor::new();
        known.members_of(&body);
        assert_eq!(
            known.quote("type AT-1 / ID-3").as_str(),
            "type [redacted] / [redacted]"
        );
        // Names without a value, and lookalikes, are left alone.
        let q =
            r.quote(r#"{"error":"access_token","token_type":"bearer","access_token_hint":"x"}"#);
        assert_eq!(
            q.as_str(),
            r#"{"error":"access_token","token_type":"bearer","access_token_hint":"x"}"#
        );
    }

    #[test]
    fn tokens_and_assertions_are_scrubbed_with_their_signatures() {
        let mut r = Redactor::new();
        r.token("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg");
        r.assertion("aGVhZGVy.Y2xhaW1z.c2lnbmF0dXJlLW9mLWFzc2VydGlvbg");
        let q = r.quote(
            "bad token eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg; \
             sig c2lnbmF0dXJlLW9mLWFzc2VydGlvbg",
        );
        assert_eq!(q.as_str(), "bad token [redacted]; sig [redacted]");
    }

    #[test]
    fn a_store_password_is_scrubbed_as_sent_and_percent_encoded() {
        let mut r = Redactor::new();
        r.password("hunter2 pw");
        let q = r.quote("ERR wrong\r\npassword hunter2 pw for hunter2%20pw");
        assert_eq!(q.as_str(), "ERR wrong password [redacted] for [redacted]");
    }

    #[test]
    fn quotations_are_one_line_and_clipped() {
        let r = redactor();
        assert_eq!(
            r.quote("<html>\r\n  <body>Bad\tGateway</body>\n</html>\n")
                .as_str(),
            "<html> <body>Bad Gateway</body> </html>"
        );
        let long = r.quote(&"x".repeat(500_000));
        assert_eq!(long.as_str().chars().count(), QUOTE_LIMIT);
        assert!(long.as_str().ends_with(CLIPPED));
        let exact = "y".repeat(QUOTE_LIMIT - 1);
        assert_eq!(r.quote(&exact).as_str(), exact, "what fits is not clipped");
        // The secret after a long run of white space: collapsed away, still scrubbed.
        let hidden = format!("{}{SECRET}", " \t\r\n".repeat(200_000));
        assert_eq!(r.quote(&hidden).as_str(), REDACTED);
        // Many secrets: clipped on a whole marker, never half a secret.
        let many = SECRET.repeat(10_000);
        let q = r.quote(&many);
        assert_clean(q.as_str(), "repeated");
        assert!(q.as_str().ends_with(CLIPPED));
        // Wide characters count as one each.
        let wide = r.quote(&"é".repeat(1000));
        assert_eq!(wide.as_str().chars().count(), QUOTE_LIMIT);
    }

    #[test]
    fn scrubbing_keeps_everything_else_and_survives_odd_input() {
        let r = redactor();
        assert_eq!(r.scrub("a  b\nc"), "a  b\nc");
        for text in [
            "%",
            "%4",
            "\\",
            "\\u00",
            "+",
            "access_token",
            "access_token=",
            "id_token:\"",
            "é%C3",
        ] {
            let _ = r.quote(text);
            let _ = r.scrub(text);
        }
        assert_eq!(
            r.quote_bytes(b"\xff\xfe ok").as_str(),
            "\u{fffd}\u{fffd} ok"
        );
        let empty = Redactor::new();
        assert_eq!(empty.quote("plain text").as_str(), "plain text");
    }
}
