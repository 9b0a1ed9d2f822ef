//! Just enough X.509 (RFC 5280 §4.1) to explain a certificate: subject, issuer, validity and
//! the DNS names it is for. The certificate is verified by rustls; this only reads it, and
//! gives up (`None`) on anything it does not expect.

use crate::http::retry::days_from_civil;

/// What a diagnosis says about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertSummary {
    /// e.g. `CN=localhost, O=Example`.
    pub(crate) subject: String,
    pub(crate) issuer: String,
    /// Unix seconds.
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    /// `subjectAltName` DNS names and IP addresses.
    pub(crate) names: Vec<String>,
}

impl CertSummary {
    /// Self-issued (subject = issuer): a root, when it is a CA.
    pub(crate) fn is_self_issued(&self) -> bool {
        self.subject == self.issuer
    }
}

/// A DER element: tag and contents.
struct Element<'a> {
    tag: u8,
    body: &'a [u8],
}

/// Reads consecutive DER elements from a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<Element<'a>> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        let (body, rest) = rest.split_at(len);
        self.0 = rest;
        Some(Element { tag, body })
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        self.next().filter(|e| e.tag == tag).map(|e| e.body)
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// Summarise a DER certificate; `None` if it is not one this reader understands.
pub(crate) fn summarize(der: &[u8]) -> Option<CertSummary> {
    let certificate = Reader(der).expect(SEQUENCE)?;
    let mut tbs = Reader(Reader(certificate).expect(SEQUENCE)?);
    let mut first = tbs.next()?;
    if first.tag == 0xa0 {
        // [0] EXPLICIT version; the serial number follows.
        first = tbs.next()?;
    }
    if first.tag != 0x02 {
        return None;
    }
    tbs.expect(SEQUENCE)?; // signature algorithm
    let issuer = name(tbs.expect(SEQUENCE)?)?;
    let mut validity = Reader(tbs.expect(SEQUENCE)?);
    let not_before = time(validity.next()?)?;
    let not_after = time(validity.next()?)?;
    let subject = name(tbs.expect(SEQUENCE)?)?;
    tbs.expect(SEQUENCE)?; // subject public key info
    let mut names = Vec::new();
    while let Some(element) = tbs.next() {
        if element.tag == 0xa3 {
            names = alt_names(element.body).unwrap_or_default();
        }
    }
    Some(CertSummary {
        subject,
        issuer,
        not_before,
        not_after,
        names,
    })
}

/// A distinguished name as `CN=…, O=…`, in the certificate's order, for the usual
/// attributes (others are skipped).
fn name(body: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    let mut rdns = Reader(body);
    while let Some(rdn) = rdns.next() {
        if rdn.tag != SET {
            return None;
        }
        let mut attributes = Reader(rdn.body);
        while let Some(attribute) = attributes.next() {
            let mut fields = Reader(attribute.body);
            let oid = fields.expect(OID)?;
            let value = fields.next()?;
            let label = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x08] => "ST",
                [0x55, 0x04, 0x07] => "L",
                _ => continue,
            };
            // UTF8String, PrintableString, IA5String, T61String; BMPString is rare enough
            // to show as replacement characters.
            parts.push(format!("{label}={}", String::from_utf8_lossy(value.body)));
        }
    }
    Some(parts.join(", "))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn time(element: Element<'_>) -> Option<i64> {
    let text = std::str::from_utf8(element.body).ok()?;
    let text = text.strip_suffix('Z')?;
    let (year, rest) = match element.tag {
        0x17 if text.len() == 12 => {
            let yy: u64 = text[..2].parse().ok()?;
            // RFC 5280 §4.1.2.5.1: 50–99 are 19xx, 00–49 are 20xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        0x18 if text.len() == 14 => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<u64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    i64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

/// The DNS names and IP addresses of the subjectAltName extension, from `[3] Extensions`.
fn alt_names(extensions: &[u8]) -> Option<Vec<String>> {
    let mut list = Reader(Reader(extensions).expect(SEQUENCE)?);
    while let Some(extension) = list.next() {
        let mut fields = Reader(extension.body);
        if fields.expect(OID)? != [0x55, 0x1d, 0x11] {
            continue;
        }
        let mut value = fields.next()?;
        if value.tag == 0x01 {
            value = fields.next()?; // the `critical` flag
        }
        let mut general_names = Reader(Reader(value.body).expect(SEQUENCE)?);
        let mut names = Vec::new();
        while let Some(general_name) = general_names.next() {
            match (general_name.tag, general_name.body.len()) {
                (0x82, _) => names.push(String::from_utf8_lossy(general_name.body).into_owned()),
                (0x87, 4) => {
                    let b = general_name.body;
                    names.push(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string());
                }
                (0x87, 16) => {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(general_name.body);
                    names.push(std::net::Ipv6Addr::from(octets).to_string());
                }
                _ => {}
            }
        }
        return Some(names);
    }
    Some(Vec::new())
}

/// A Unix time as `YYYY-MM-DD`.
pub(crate) fn date(unix: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    #[test]
    fn the_mock_ca_is_read_back() {
        let dir = std::env::temp_dir().join(format!("tw-x509-{}", std::process::id()));
        let mock = tokenward_mock::MockServer::start_tls(&dir);
        let der = CertificateDer::from_pem_file(mock.ca_pem_path().unwrap()).unwrap();
        let ca = summarize(&der).expect("a certificate");
        assert_eq!(ca.subject, "CN=tokenward mock CA");
        assert!(ca.is_self_issued());
        assert_eq!(date(ca.not_before), "2020-01-01");
        assert_eq!(date(ca.not_after), "2049-12-31");
        assert!(ca.names.is_empty());
        drop(mock);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn times_and_dates() {
        let utc = Element {
            tag: 0x17,
            body: b"491231235959Z",
        };
        assert_eq!(date(time(utc).unwrap()), "2049-12-31");
        let generalized = Element {
            tag: 0x18,
            body: b"20500101000000Z",
        };
        assert_eq!(time(generalized), Some(2_524_608_000));
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        let bad = Element {
            tag: 0x17,
            body: b"4912312359Z",
        };
        assert_eq!(time(bad), None);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(summarize(b""), None);
        assert_eq!(summarize(&[0x30, 0x82, 0xff]), None);
        assert_eq!(summarize(&[0x30, 0x03, 0x02, 0x01, 0x01]), None);
    }
}
