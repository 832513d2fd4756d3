//! Finds the bracket a syntax error is really about. The HCL parser reports where it gave up —
//! often the end of the file, or a later block — not where the unclosed `{`, `[` or `(` was
//! opened; this scan names the opener so the message points at the cause.
//!
//! It tracks quoted strings (with `${…}` / `%{…}` inside them), heredocs and comments, so
//! brackets in text do not count.

/// An opener that is never closed, or a closer that does not match its opener.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Problem {
    /// `open` (byte offset of the bracket) is never closed.
    Unclosed { open: usize, bracket: char },
    /// The closer at `at` does not match the bracket opened at `open`.
    Mismatched {
        open: usize,
        bracket: char,
        at: usize,
        closer: char,
    },
}

/// The first bracket problem of `text`: a mismatched closer, else the innermost opener left
/// open at the end. `None` when the brackets balance.
pub(super) fn problem(text: &str) -> Option<Problem> {
    // What is open: brackets in code, and quoted strings (an interpolation inside a string is
    // a `{` entry above the string's entry).
    #[derive(Clone, Copy)]
    enum Open {
        Bracket(char, usize),
        Str,
    }
    let b = text.as_bytes();
    let mut stack: Vec<Open> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let in_string = matches!(stack.last(), Some(Open::Str));
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'$' | b'%' if b.get(i + 1) == Some(&b'{') => {
                    if b.get(i.wrapping_sub(1)) == Some(&c) {
                        // `$${` / `%%{` is an escape, not an interpolation.
                    } else {
                        stack.push(Open::Bracket('{', i + 1));
                        i += 1;
                    }
                }
                b'\n' => {
                    // A quoted string cannot span lines: the parser will complain here.
                    stack.pop();
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => stack.push(Open::Str),
            b'#' => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'/') => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(b.len(), |k| i + 2 + k + 1);
            }
            b'<' if b.get(i + 1) == Some(&b'<') => i = heredoc_end(text, i),
            b'{' | b'[' | b'(' => stack.push(Open::Bracket(char::from(c), i)),
            b'}' | b']' | b')' => {
                let closer = char::from(c);
                match stack.pop() {
                    Some(Open::Bracket(bracket, open)) if pair(bracket) != closer => {
                        return Some(Problem::Mismatched {
                            open,
                            bracket,
                            at: i,
                            closer,
                        });
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        i += 1;
    }
    stack.iter().rev().find_map(|o| match *o {
        Open::Bracket(bracket, open) => Some(Problem::Unclosed { open, bracket }),
        Open::Str => None,
    })
}

fn pair(open: char) -> char {
    match open {
        '{' => '}',
        '[' => ']',
        _ => ')',
    }
}

/// The offset of the newline ending the line that holds `i` (or the end of the text).
fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |k| i + k)
}

/// For a heredoc starting at `i` (`<<EOF` or `<<-EOF`), the offset of the end of its closing
/// marker line; `i + 1` when this is not a heredoc.
fn heredoc_end(text: &str, i: usize) -> usize {
    let rest = &text[i + 2..];
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let marker: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if marker.is_empty() {
        return i + 1;
    }
    let b = text.as_bytes();
    let mut line = line_end(b, i) + 1;
    while line < b.len() {
        let end = line_end(b, line);
        if text[line..end].trim() == marker {
            return end;
        }
        line = end + 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_bracket_a_syntax_error_is_about() {
        #[rustfmt::skip]
        let table: &[(&str, Option<Problem>, &str)] = &[
            ("a = 1\nb { c = [1] }\n", None, "balanced"),
            ("s \"q\" \"n\" {\n  a = 1\n", Some(Problem::Unclosed { open: 10, bracket: '{' }), "unclosed block"),
            ("s {\n  l = [\n    \"x\",\n}\nb {\n}\n", Some(Problem::Mismatched { open: 10, bracket: '[', at: 21, closer: '}' }), "list closed by a brace"),
            ("s {\n  a = \"{[(\"\n}\n", None, "brackets in a string"),
            ("s {\n  a = \"${x[\"k\"]}\"\n}\n", None, "an interpolation with a string inside"),
            ("s {\n  a = \"$${\"\n}\n", None, "an escaped interpolation"),
            ("s {\n  # {\n  // [\n  /* ( */\n}\n", None, "comments"),
            ("s {\n  a = <<EOF\n{ [\nEOF\n}\n", None, "a heredoc"),
            ("s {\n  a = <<-EOT\n  {\n  EOT\n", Some(Problem::Unclosed { open: 2, bracket: '{' }), "an unclosed block around a heredoc"),
            ("s {\n  a = f(1,\n}\n", Some(Problem::Mismatched { open: 11, bracket: '(', at: 15, closer: '}' }), "a call left open"),
        ];
        for (text, want, why) in table {
            assert_eq!(problem(text), *want, "{why}");
        }
    }
}
