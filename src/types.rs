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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgo {
    Sha256,
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashAlgo::Sha256 => f.write_str("sha256"),
        }
    }
}

/// An expected checksum (`iso_checksum`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// `none`: no verification (warned about).
    None,
    /// An algorithm and its lowercase hex digest.
    Digest { algo: HashAlgo, hex: String },
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checksum::None => f.write_str("none"),
            Checksum::Digest { algo, hex } => write!(f, "{algo}:{hex}"),
        }
    }
}

/// Parses an `iso_checksum`: `sha256:HEX`, bare 64-digit hex, or `none`.
pub fn parse_checksum(s: &str) -> Result<Checksum, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Ok(Checksum::None);
    }
    if s.is_empty() {
        return Err("a checksum must be specified (`sha256:HEX` or `none`)".into());
    }
    let (algo, hex) = match s.split_once(':') {
        Some((a, h)) if a.eq_ignore_ascii_case("sha256") => (HashAlgo::Sha256, h),
        Some((a, _)) => {
            return Err(format!(
                "unsupported checksum type `{a}` (supported here: `sha256`, `none`)"
            ));
        }
        None if s.len() == 64 => (HashAlgo::Sha256, s),
        None => {
            return Err(format!(
                "unknown checksum `{s}` (expected `sha256:` followed by 64 hex digits)"
            ));
        }
    };
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "`{hex}` is not a sha256 digest (expected 64 hex digits)"
        ));
    }
    Ok(Checksum::Digest {
        algo,
        hex: hex.to_ascii_lowercase(),
    })
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
        let hex = "a".repeat(64);
        let want = Checksum::Digest {
            algo: HashAlgo::Sha256,
            hex: hex.clone(),
        };
        assert_eq!(parse_checksum(&format!("sha256:{hex}")), Ok(want.clone()));
        assert_eq!(
            parse_checksum(&format!("SHA256:{}", hex.to_uppercase())),
            Ok(want.clone())
        );
        assert_eq!(parse_checksum(&hex), Ok(want));
        assert_eq!(parse_checksum("none"), Ok(Checksum::None));
        assert!(parse_checksum("sha256:abc").is_err());
        assert!(parse_checksum("").is_err());
        assert!(parse_checksum("md4:00").is_err());
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
