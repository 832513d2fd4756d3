//! AWS Signature Version 4: the `Authorization` header every AWS API request carries.
//!
//! Written on the hash crates kiln already has (hmac, sha2, hex) rather than taken from
//! `aws-sigv4`: the algorithm is one page, and the crate brings the SDK's runtime types and
//! 19 crates for it (see the issue-18 note for the figures). Tested against AWS's published
//! SigV4 test suite below.
//!
//! What is signed: the method, the path (dot segments and repeated slashes removed, each
//! segment URI-encoded once, as for every service but S3), the query (sorted, encoded), every
//! header given (names lower-cased and sorted, values trimmed with inner runs of spaces made one,
//! repeated headers joined with commas in order), and the SHA-256 of the body.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::credentials::Credentials;

/// What a request looks like to the signer.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (`/` for EC2).
    pub path: &'a str,
    /// Query parameters, unencoded, in any order.
    pub query: &'a [(String, String)],
    /// Headers to sign, `host` among them, unencoded; `x-amz-date` and the session token are
    /// added by [`sign`].
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Where a request goes: its region and service (`us-east-1`, `ec2`).
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// The headers to add to a request so AWS accepts it: `x-amz-date`, `x-amz-security-token`
/// (with temporary credentials) and `authorization`, as (name, value).
pub fn sign(
    req: &Request<'_>,
    creds: &Credentials,
    scope: &Scope<'_>,
    at: SystemTime,
) -> Vec<(String, String)> {
    let amz_date = amz_date(at);
    let mut added = vec![("x-amz-date".to_owned(), amz_date.clone())];
    if let Some(token) = &creds.session_token {
        added.push(("x-amz-security-token".to_owned(), token.expose().to_owned()));
    }
    let mut headers: Vec<(String, String)> = req.headers.to_vec();
    headers.extend(added.iter().cloned());
    let (canonical, signed_headers) = canonical_request(req, &headers);
    let date = &amz_date[..8];
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{credential_scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(creds.secret_access_key.expose(), date, scope);
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
    added.push((
        "authorization".to_owned(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, \
             Signature={signature}",
            creds.access_key_id
        ),
    ));
    added
}

/// The canonical request and the `SignedHeaders` list.
fn canonical_request(req: &Request<'_>, headers: &[(String, String)]) -> (String, String) {
    let mut query: Vec<(String, String)> = req
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // Names sorted; the values of a repeated header joined in the order given.
    let mut names: Vec<String> = headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let mut canonical_headers = String::new();
    for name in &names {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let signed = names.join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
        req.method,
        canonical_path(req.path),
        query.join("&"),
        hex::encode(Sha256::digest(req.body))
    );
    (canonical, signed)
}

/// The path with `.`/`..` segments and empty segments removed, each segment encoded; a
/// trailing slash is kept.
fn canonical_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(
        &segments
            .iter()
            .map(|s| uri_encode(s))
            .collect::<Vec<_>>()
            .join("/"),
    );
    if !segments.is_empty() && path.ends_with('/') {
        out.push('/');
    }
    out
}

/// RFC 3986 encoding: everything but `A-Z a-z 0-9 - _ . ~` as `%XX` (upper-case hex).
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret: &str, date: &str, scope: &Scope<'_>) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
fn amz_date(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::types::Secret;

    /// The test suite's credentials and time (2015-08-30T12:36:00Z).
    fn suite() -> (Credentials, SystemTime) {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        };
        (creds, UNIX_EPOCH + Duration::from_secs(1_440_938_160))
    }

    const SCOPE: Scope<'static> = Scope {
        region: "us-east-1",
        service: "service",
    };

    fn signature(
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &str,
        creds: &Credentials,
        at: SystemTime,
    ) -> (String, String) {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut all = vec![("Host".to_owned(), "example.amazonaws.com".to_owned())];
        all.extend(
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let req = Request {
            method,
            path,
            query: &query,
            headers: &all,
            body: body.as_bytes(),
        };
        let added = sign(&req, creds, &SCOPE, at);
        let auth = added
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone())
            .unwrap();
        let (sig_headers, sig) = auth.split_once(", Signature=").unwrap();
        let signed = sig_headers.rsplit("SignedHeaders=").next().unwrap();
        (signed.to_owned(), sig.to_owned())
    }

    /// Cases of AWS's SigV4 test suite (`aws-sig-v4-test-suite`): name, method, path, query,
    /// headers besides `Host`, body, expected SignedHeaders and Signature.
    #[allow(clippy::type_complexity)]
    #[rustfmt::skip]
    const VECTORS: &[(
        &str,
        &str,
        &str,
        &[(&str, &str)],
        &[(&str, &str)],
        &str,
        &str,
        &str,
    )] = &[
        ("get-vanilla", "GET", "/", &[], &[], "", "host;x-amz-date",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("get-vanilla-empty-query-key", "GET", "/", &[("Param1", "value1")], &[], "",
         "host;x-amz-date", "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
        ("get-vanilla-query-order-key-case", "GET", "/",
         &[("Param2", "value2"), ("Param1", "value1")], &[], "", "host;x-amz-date",
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ("get-vanilla-query-order-key", "GET", "/",
         &[("Param1", "value2"), ("Param1", "Value1")], &[], "", "host;x-amz-date",
         "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
        ("get-vanilla-query-order-value", "GET", "/",
         &[("Param1", "value2"), ("Param1", "value1")], &[], "", "host;x-amz-date",
         "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
        ("get-vanilla-query-unreserved", "GET", "/",
         &[("-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")],
         &[], "", "host;x-amz-date",
         "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
        ("get-unreserved", "GET",
         "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", &[], &[], "",
         "host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
        ("get-header-value-trim", "GET", "/", &[],
         &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")], "",
         "host;my-header1;my-header2;x-amz-date",
         "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
        ("get-header-key-duplicate", "GET", "/", &[],
         &[("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")], "",
         "host;my-header1;x-amz-date",
         "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
        ("get-header-value-order", "GET", "/", &[],
         &[("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"),
           ("My-Header1", "value2")], "", "host;my-header1;x-amz-date",
         "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
        ("normalize-path/get-relative", "GET", "/example/..", &[], &[], "", "host;x-amz-date",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("normalize-path/get-relative-relative", "GET", "/example1/example2/../..", &[], &[],
         "", "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("normalize-path/get-slash", "GET", "//", &[], &[], "", "host;x-amz-date",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("normalize-path/get-slash-dot-slash", "GET", "/./", &[], &[], "", "host;x-amz-date",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("normalize-path/get-slash-pointless-dot", "GET", "/./example", &[], &[], "",
         "host;x-amz-date", "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"),
        ("normalize-path/get-slashes", "GET", "//example//", &[], &[], "", "host;x-amz-date",
         "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"),
        ("normalize-path/get-space", "GET", "/example space/", &[], &[], "", "host;x-amz-date",
         "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
        ("post-vanilla", "POST", "/", &[], &[], "", "host;x-amz-date",
         "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ("post-vanilla-query", "POST", "/", &[("Param1", "value1")], &[], "", "host;x-amz-date",
         "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
        ("post-header-key-sort", "POST", "/", &[], &[("My-Header1", "value1")], "",
         "host;my-header1;x-amz-date",
         "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
        ("post-header-value-case", "POST", "/", &[], &[("My-Header1", "VALUE1")], "",
         "host;my-header1;x-amz-date",
         "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
        ("post-x-www-form-urlencoded", "POST", "/", &[],
         &[("Content-Type", "application/x-www-form-urlencoded")], "Param1=value1",
         "content-type;host;x-amz-date",
         "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    ];

    #[test]
    fn aws_test_suite_vectors() {
        let (creds, at) = suite();
        for &(name, method, path, query, headers, body, signed, expected) in VECTORS {
            let (got_signed, got) = signature(method, path, query, headers, body, &creds, at);
            assert_eq!(got_signed, signed, "{name}: SignedHeaders");
            assert_eq!(got, expected, "{name}: Signature");
        }
    }

    /// `post-sts-token/post-sts-header-before`: temporary credentials sign their token.
    #[test]
    fn session_token_is_signed() {
        let (mut creds, at) = suite();
        creds.session_token = Some(Secret::new(
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRX\
             mxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsbur\
             EDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPk\
             UL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==",
        ));
        let (signed, sig) = signature("POST", "/", &[], &[], "", &creds, at);
        assert_eq!(signed, "host;x-amz-date;x-amz-security-token");
        assert_eq!(
            sig,
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        );
    }

    /// The suite's get-vanilla canonical request, spelled out.
    #[test]
    fn canonical_request_of_get_vanilla() {
        let headers = vec![
            ("Host".to_owned(), "example.amazonaws.com".to_owned()),
            ("X-Amz-Date".to_owned(), "20150830T123600Z".to_owned()),
        ];
        let req = Request {
            method: "GET",
            path: "/",
            query: &[],
            headers: &headers,
            body: b"",
        };
        let (canonical, signed) = canonical_request(&req, &headers);
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(signed, "host;x-amz-date");
    }

    #[test]
    fn dates_and_encoding() {
        let (_, at) = suite();
        assert_eq!(amz_date(at), "20150830T123600Z");
        assert_eq!(
            amz_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "20000229T000000Z"
        );
        assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(uri_encode("a b/c~d*é"), "a%20b%2Fc~d%2A%C3%A9");
    }

    #[test]
    fn a_wrong_secret_changes_the_signature() {
        let (mut creds, at) = suite();
        let (_, good) = signature("GET", "/", &[], &[], "", &creds, at);
        creds.secret_access_key = Secret::new("another");
        let (_, bad) = signature("GET", "/", &[], &[], "", &creds, at);
        assert_ne!(good, bad);
    }
}
