//! Values parsed once from template strings: durations, sizes, checksums.
//!
//! Each parser returns a message meant for a template diagnostic; callers attach the location.

use std::fmt;
use std::time::Duration;

/// A Go `time.ParseDuration` value, as Packer templates write them (`10s`, `1m30s`, `300ms`).
/// Negative durations are kept as a sign, because Packer gives `boot_wait = "-1s"` a meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration {
    pub negative: bool,
    pub abs: Duration,
}

impl GoDuration {
    /// The duration, with any negative value read as zero.
    pub fn or_zero(self) -> Duration {
        if self.negative {
            Duration::ZERO
        } else {
            self.abs
        }
    }
}

/// Parses a Go duration string: an optional sign, then one or more `<number><unit>` groups with
/// units `ns us µs ms s m h`; a bare `0` is allowed.
pub fn parse_duration(s: &str) -> Result<GoDuration, String> {
    let bad = || format!("invalid duration `{s}` (expected e.g. `10s`, `1m30s`, `500ms`)");
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(GoDuration {
            negative: false,
            abs: Duration::ZERO,
        });
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => return Err(format!("unknown unit `{unit}` in duration `{s}`")),
        };
        total += value * nanos_per;
        rest = &rest[unit_len..];
    }
    Ok(GoDuration {
        negative,
        abs: Duration::from_nanos(total.round() as u64),
    })
}

/// Parses Packer's `disk_size`: a number with an optional `b k m g t` suffix (any case); a bare
/// number means MiB. Returns bytes.
pub fn parse_disk_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid disk size `{s}` (expected e.g. `8G`, `8192M` or `8192`)");
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "b" => 1,
        "k" => 1 << 10,
        "" | "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// A hash algorithm named by an `iso_checksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgo {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgo {
    /// Every algorithm, by its name in templates and checksum files.
    pub const ALL: [HashAlgo; 4] = [
        HashAlgo::Md5,
        HashAlgo::Sha1,
        HashAlgo::Sha256,
        HashAlgo::Sha512,
    ];

    /// The lowercase name (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// The algorithm called `name` (any case, as in `SHA256 (f) = …`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Length of a digest in hex digits.
    pub fn hex_len(self) -> usize {
        match self {
            HashAlgo::Md5 => 32,
            HashAlgo::Sha1 => 40,
            HashAlgo::Sha256 => 64,
            HashAlgo::Sha512 => 128,
        }
    }

    /// The algorithm whose digests have `len` hex digits (Packer infers bare hex this way).
    pub fn from_hex_len(len: usize) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.hex_len() == len)
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An expected checksum (`iso_checksum`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// `none`: no verification (warned about).
    None,
    /// An algorithm and its lowercase hex digest.
    Digest { algo: HashAlgo, hex: String },
    /// `file:URL-or-path`: a checksum file (GNU or BSD lines, maybe clearsigned) that lists the
    /// ISO by file name; fetched and read when the build starts.
    File { url: String },
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checksum::None => f.write_str("none"),
            Checksum::Digest { algo, hex } => write!(f, "{algo}:{hex}"),
            Checksum::File { url } => write!(f, "file:{url}"),
        }
    }
}

/// Parses a digest with an optional `algo:` prefix (`sha256:HEX`, `md5:HEX`, bare hex whose
/// length names the algorithm).
pub fn parse_digest(s: &str) -> Result<Checksum, String> {
    let (algo, hex) = match s.split_once(':') {
        Some((a, h)) => match HashAlgo::from_name(a) {
            Some(algo) => (algo, h),
            None => {
                return Err(format!(
                    "unsupported checksum type `{a}` (supported: `md5`, `sha1`, `sha256`, \
                     `sha512`, `file:`, `none`)"
                ));
            }
        },
        None => match HashAlgo::from_hex_len(s.len()) {
            Some(algo) if s.chars().all(|c| c.is_ascii_hexdigit()) => (algo, s),
            _ => {
                return Err(format!(
                    "unknown type for checksum `{s}` (expected `TYPE:HEX`, hex of 32, 40, 64 \
                     or 128 digits, `file:URL` or `none`)"
                ));
            }
        },
    };
    if hex.len() != algo.hex_len() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "`{hex}` is not a {algo} digest (expected {} hex digits)",
            algo.hex_len()
        ));
    }
    Ok(Checksum::Digest {
        algo,
        hex: hex.to_ascii_lowercase(),
    })
}

/// Parses an `iso_checksum`: `none`, `file:URL-or-path`, `TYPE:HEX` (md5, sha1, sha256,
/// sha512; any case) or bare hex.
pub fn parse_checksum(s: &str) -> Result<Checksum, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Ok(Checksum::None);
    }
    if s.is_empty() {
        return Err("a checksum must be specified (`sha256:HEX`, `file:URL` or `none`)".into());
    }
    if s.to_ascii_lowercase().ends_with(".iso") {
        return Err(format!(
            "`{s}` looks like an ISO, not a checksum (did you mean `file:` followed by a \
             checksum file?)"
        ));
    }
    if let Some(url) = s.strip_prefix("file:") {
        if url.is_empty() {
            return Err("`file:` must be followed by the URL or path of a checksum file".into());
        }
        return Ok(Checksum::File { url: url.into() });
    }
    parse_digest(s)
}

/// `bytes` as a UUID of `version` (4 random, 5 name-based), in its usual text form with the
/// version and RFC 4122 variant bits set.
pub fn uuid_text(mut bytes: [u8; 16], version: u8) -> String {
    bytes[6] = (bytes[6] & 0x0f) | (version << 4);
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |n| Duration::from_millis(n);
        let table = [
            ("10s", false, ms(10_000)),
            ("1m30s", false, ms(90_000)),
            ("300ms", false, ms(300)),
            ("1.5s", false, ms(1500)),
            ("2h", false, ms(7_200_000)),
            ("0", false, ms(0)),
            ("-1s", true, ms(1000)),
        ];
        for (input, negative, abs) in table {
            assert_eq!(
                parse_duration(input),
                Ok(GoDuration { negative, abs }),
                "{input}"
            );
        }
        for bad in ["", "10", "s", "1x", "1m-30s", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn disk_sizes() {
        assert_eq!(parse_disk_size("40960M"), Ok(40960 << 20));
        assert_eq!(parse_disk_size("8G"), Ok(8 << 30));
        assert_eq!(parse_disk_size("8g"), Ok(8 << 30));
        assert_eq!(parse_disk_size("2048"), Ok(2048 << 20));
        assert!(parse_disk_size("8GB").is_err());
        assert!(parse_disk_size("-1").is_err());
    }

    #[test]
    fn checksums() {
        let d = |algo, c: char, n| {
            Ok(Checksum::Digest {
                algo,
                hex: c.to_string().repeat(n),
            })
        };
        let table: &[(String, Result<Checksum, String>, &str)] = &[
            (
                format!("sha256:{}", "a".repeat(64)),
                d(HashAlgo::Sha256, 'a', 64),
                "sha256 prefix",
            ),
            (
                format!("SHA256:{}", "A".repeat(64)),
                d(HashAlgo::Sha256, 'a', 64),
                "any case, lowercased",
            ),
            (
                format!("md5:{}", "b".repeat(32)),
                d(HashAlgo::Md5, 'b', 32),
                "md5 prefix",
            ),
            (
                format!("sha1:{}", "c".repeat(40)),
                d(HashAlgo::Sha1, 'c', 40),
                "sha1 prefix",
            ),
            (
                format!("sha512:{}", "d".repeat(128)),
                d(HashAlgo::Sha512, 'd', 128),
                "sha512 prefix",
            ),
            (
                "e".repeat(32),
                d(HashAlgo::Md5, 'e', 32),
                "bare hex, 32 digits is md5",
            ),
            (
                "e".repeat(40),
                d(HashAlgo::Sha1, 'e', 40),
                "bare hex, 40 digits is sha1",
            ),
            (
                "e".repeat(64),
                d(HashAlgo::Sha256, 'e', 64),
                "bare hex, 64 digits is sha256",
            ),
            (
                "e".repeat(128),
                d(HashAlgo::Sha512, 'e', 128),
                "bare hex, 128 digits is sha512",
            ),
            ("none".into(), Ok(Checksum::None), "none"),
            (
                "file:https://h/SHA256SUMS".into(),
                Ok(Checksum::File {
                    url: "https://h/SHA256SUMS".into(),
                }),
                "file: with a URL",
            ),
            (
                "file:./sums.txt".into(),
                Ok(Checksum::File {
                    url: "./sums.txt".into(),
                }),
                "file: with a path",
            ),
        ];
        for (input, want, reason) in table {
            assert_eq!(&parse_checksum(input), want, "{reason}");
        }
        for bad in [
            "sha256:abc".to_owned(),
            String::new(),
            "md4:00".into(),
            format!("md5:{}", "a".repeat(64)),
            "g".repeat(64),
            "a".repeat(63),
            "file:".into(),
            "debian.iso".into(),
        ] {
            assert!(parse_checksum(&bad).is_err(), "{bad:?} should fail");
        }
    }
}

/// A sensitive string (a password): `Debug` and `Display` print `<sensitive>`, so it cannot
/// reach a log or an error message by accident. Read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send it (e.g. SSH authentication).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<sensitive>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<sensitive>")
    }
}

#[cfg(test)]
mod secret_tests {
    use super::Secret;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<sensitive> <sensitive>");
        assert_eq!(s.expose(), "hunter2");
    }
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01 (Howard Hinnant's
/// algorithm), for the template's date functions and the UI's timestamps.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
