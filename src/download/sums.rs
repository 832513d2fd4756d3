//! Reading checksum files (`iso_checksum = "file:…"`): GNU coreutils lines (`HASH  name`,
//! `HASH *name`), BSD/`--tag` lines (`SHA256 (name) = HASH`), comments, and the same wrapped in
//! an OpenPGP clearsignature (Debian's and Fedora's `*SUMS`/`CHECKSUM` files). Pure text in,
//! digest out; fetching the file is [`super`]'s job. The signature itself is not checked.

use crate::types::HashAlgo;

const PGP_BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const PGP_SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";

/// One line of a checksum file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line<'a> {
    algo: HashAlgo,
    hex: &'a str,
    /// The file name as written (may be `./x.iso` or `dir/x.iso`); empty for a bare hash.
    name: &'a str,
}

/// The digest listed for `file_name` in checksum file `text`.
///
/// A line matches when its name is `file_name`, or a path ending in `/file_name`. A file that
/// holds one bare hash and nothing else matches any name. Returns the algorithm (from the BSD
/// tag, else from the digest's length) and the lowercase hex digest.
pub fn find(text: &str, file_name: &str) -> Option<(HashAlgo, String)> {
    let body = signed_body(text);
    let lines: Vec<Line<'_>> = body.lines().filter_map(parse_line).collect();
    let matches = |l: &&Line<'_>| {
        l.name == file_name
            || l.name
                .rsplit_once('/')
                .is_some_and(|(_, base)| base == file_name)
    };
    let only_bare = match lines.as_slice() {
        [only] if only.name.is_empty() => Some(only),
        _ => None,
    };
    let found = lines.iter().find(matches).or(only_bare)?;
    Some((found.algo, found.hex.to_ascii_lowercase()))
}

/// The signed text of a clearsigned message (dash-escaping undone), or all of `text`.
fn signed_body(text: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = text.find(PGP_BEGIN) else {
        return text.into();
    };
    let after = &text[start + PGP_BEGIN.len()..];
    // Armor headers (`Hash: SHA256`) end at the first empty line.
    let body_start = after
        .find("\n\n")
        .map(|i| i + 2)
        .or_else(|| after.find("\r\n\r\n").map(|i| i + 4))
        .unwrap_or(after.len());
    let body = &after[body_start..];
    let body = body.find(PGP_SIGNATURE).map_or(body, |end| &body[..end]);
    body.lines()
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        .into()
}

fn parse_line(raw: &str) -> Option<Line<'_>> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    bsd_line(line).or_else(|| gnu_line(line))
}

/// `SHA256 (name) = HASH`.
fn bsd_line(line: &str) -> Option<Line<'_>> {
    let (tag, rest) = line.split_once(" (")?;
    let (name, hex) = rest.rsplit_once(") = ")?;
    let algo = HashAlgo::from_name(tag.trim())?;
    let hex = hex.trim();
    is_digest(algo, hex).then_some(Line { algo, hex, name })
}

/// `HASH  name`, `HASH *name` (binary mode), `HASH name`, or a bare `HASH`.
fn gnu_line(line: &str) -> Option<Line<'_>> {
    let (hex, rest) = match line.split_once(char::is_whitespace) {
        Some((h, r)) => (h, r),
        None => (line, ""),
    };
    let algo = HashAlgo::from_hex_len(hex.len())?;
    if !is_digest(algo, hex) {
        return None;
    }
    let name = rest.trim_start();
    let name = name.strip_prefix('*').unwrap_or(name);
    Some(Line { algo, hex, name })
}

fn is_digest(algo: HashAlgo, hex: &str) -> bool {
    hex.len() == algo.hex_len() && hex.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn every_checksum_file_format() {
        let md5 = "0123456789abcdef0123456789abcdef";
        let clearsigned = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n# Fedora\n\
             SHA256 (other.iso) = {B}\nSHA256 (disc.iso) = {A}\n\
             -----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n"
        );
        #[rustfmt::skip]
        let table: Vec<(String, &str, Option<(HashAlgo, String)>, &str)> = vec![
            (format!("{B}  other.iso\n{A}  disc.iso\n"), "disc.iso",
                Some((HashAlgo::Sha256, A.into())), "GNU text mode, two spaces"),
            (format!("{A} *disc.iso\n"), "disc.iso",
                Some((HashAlgo::Sha256, A.into())), "GNU binary mode, asterisk"),
            (format!("{A} disc.iso"), "disc.iso",
                Some((HashAlgo::Sha256, A.into())), "one space, no final newline"),
            (format!("{A}  ./images/disc.iso\n"), "disc.iso",
                Some((HashAlgo::Sha256, A.into())), "a path ending in the name"),
            (format!("SHA256 (disc.iso) = {A}\n"), "disc.iso",
                Some((HashAlgo::Sha256, A.into())), "BSD tag"),
            (format!("MD5 (disc.iso) = {}\n", md5.to_uppercase()), "disc.iso",
                Some((HashAlgo::Md5, md5.into())), "BSD md5, uppercase hex lowercased"),
            (format!("{md5}  disc.iso\r\n"), "disc.iso",
                Some((HashAlgo::Md5, md5.into())), "md5 by length, CRLF"),
            (clearsigned.clone(), "disc.iso",
                Some((HashAlgo::Sha256, A.into())), "clearsigned BSD (Fedora CHECKSUM)"),
            (format!("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{A}  disc.iso\n- {B}  x.iso\n-----BEGIN PGP SIGNATURE-----\n"),
                "x.iso", Some((HashAlgo::Sha256, B.into())), "clearsigned GNU, dash-escaped line"),
            (format!("{A}\n"), "anything.iso",
                Some((HashAlgo::Sha256, A.into())), "a single bare hash"),
            (format!("{A}  other.iso\n"), "disc.iso", None, "name not listed"),
            (format!("{A}  disc.iso.torrent\n"), "disc.iso", None, "prefix is not a match"),
            ("# only a comment\n".into(), "disc.iso", None, "no lines"),
            (clearsigned, "missing.iso", None, "clearsigned, name not listed"),
        ];
        for (text, name, want, reason) in table {
            assert_eq!(find(&text, name), want, "{reason}");
        }
    }
}
