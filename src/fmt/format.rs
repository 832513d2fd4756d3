//! Canonical HCL layout, the rules of HashiCorp's `hclwrite.Format` (what `packer fmt` runs).
//!
//! Formatting works on tokens, not on a syntax tree: every byte of the input is a token or
//! horizontal whitespace, so comments, blank lines and the text of strings and heredocs come
//! back exactly, and only the spaces between tokens and the indentation of lines are chosen
//! here. That is also how `hclwrite` works, which keeps the output identical to Packer's on
//! ordinary templates. The steps, per line (a line ends at a newline token):
//!
//! 1. a trailing comment is set apart, and `NAME = VALUE` lines whose value closes on the
//!    same line are split at the `=`;
//! 2. spaces between tokens follow [`space_between`];
//! 3. each line is indented two spaces per bracket still open at its start;
//! 4. the `=` of consecutive `NAME = VALUE` lines are aligned, then trailing comments of
//!    consecutive lines.

use std::ops::Range;

/// Token kinds, as HCL's scanner names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Newline,
    Comment,
    Ident,
    Number,
    /// `=` in an attribute or object item.
    Equal,
    /// Any other operator or punctuation that is not a bracket.
    Op,
    Minus,
    Bang,
    Comma,
    Dot,
    Ellipsis,
    DoubleColon,
    OBrace,
    CBrace,
    OBrack,
    CBrack,
    OParen,
    CParen,
    OQuote,
    CQuote,
    QuotedLit,
    /// `<<EOF` or `<<-EOF` with its newline.
    OHeredoc,
    /// The closing marker line of a heredoc, with its indentation.
    CHeredoc,
    /// Literal text of a heredoc.
    StringLit,
    /// `${` or `${~`.
    TemplateInterp,
    /// `%{` or `%{~`.
    TemplateControl,
    /// `}` or `~}` closing an interpolation or directive.
    TemplateSeqEnd,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
}

/// Why text could not be split into tokens: byte offset and reason.
#[derive(Debug, PartialEq, Eq)]
pub struct LexError {
    pub offset: usize,
    pub message: &'static str,
}

/// What the lexer is inside of.
enum Frame {
    /// Expressions: the file itself (`interp: false`) or an interpolation / directive, with
    /// the number of `{` opened inside it.
    Code { interp: bool, braces: usize },
    /// A quoted string.
    Quoted,
    /// A heredoc with its closing marker; `line_start` when at the start of a content line.
    Heredoc { marker: String, line_start: bool },
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Splits HCL native syntax into tokens; horizontal whitespace outside strings is dropped.
fn lex<'a>(src: &'a str) -> Result<Vec<Token<'a>>, LexError> {
    let mut out = Vec::new();
    let mut stack = vec![Frame::Code {
        interp: false,
        braces: 0,
    }];
    let mut pos = 0;
    let b = src.as_bytes();
    let tok = |out: &mut Vec<Token<'a>>, kind, r: Range<usize>| {
        out.push(Token {
            kind,
            text: &src[r],
        })
    };
    let err = |offset, message| Err(LexError { offset, message });
    while let Some(frame) = stack.last_mut() {
        match frame {
            Frame::Code { interp, braces } => {
                while pos < b.len() && matches!(b[pos], b' ' | b'\t') {
                    pos += 1;
                }
                if pos >= b.len() {
                    if *interp {
                        return err(pos, "unterminated template sequence");
                    }
                    break;
                }
                let rest = &src[pos..];
                let start = pos;
                let c = rest.chars().next().unwrap_or(' ');
                let (kind, len) = if rest.starts_with("\r\n") {
                    (Kind::Newline, 2)
                } else if c == '\n' {
                    (Kind::Newline, 1)
                } else if c == '#' || rest.starts_with("//") {
                    let end = rest.find('\n').unwrap_or(rest.len());
                    (
                        Kind::Comment,
                        end - usize::from(rest[..end].ends_with('\r')),
                    )
                } else if let Some(body) = rest.strip_prefix("/*") {
                    match body.find("*/") {
                        Some(e) => (Kind::Comment, e + 4),
                        None => return err(pos, "unterminated `/*` comment"),
                    }
                } else if c == '"' {
                    stack.push(Frame::Quoted);
                    (Kind::OQuote, 1)
                } else if let Some(h) = rest.strip_prefix("<<") {
                    let dash = h.starts_with('-');
                    let name = &h[usize::from(dash)..];
                    let n = name.find(|c: char| !is_ident_char(c)).unwrap_or(name.len());
                    if n == 0 || !name.starts_with(is_ident_start) {
                        return err(pos, "a heredoc needs a marker, as in `<<EOF`");
                    }
                    let after = &name[n..];
                    let nl = if after.starts_with("\r\n") {
                        2
                    } else if after.starts_with('\n') {
                        1
                    } else {
                        return err(pos, "a heredoc marker must end its line");
                    };
                    stack.push(Frame::Heredoc {
                        marker: name[..n].to_owned(),
                        line_start: true,
                    });
                    (Kind::OHeredoc, 2 + usize::from(dash) + n + nl)
                } else if c == '{' {
                    *braces += 1;
                    (Kind::OBrace, 1)
                } else if c == '}' || rest.starts_with("~}") {
                    if *interp && *braces == 0 {
                        stack.pop();
                        (Kind::TemplateSeqEnd, if c == '~' { 2 } else { 1 })
                    } else if c == '~' {
                        return err(pos, "unexpected `~`");
                    } else {
                        *braces = braces.saturating_sub(1);
                        (Kind::CBrace, 1)
                    }
                } else if is_ident_start(c) {
                    let n = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
                    (Kind::Ident, n)
                } else if c.is_ascii_digit() {
                    (Kind::Number, number_len(rest))
                } else {
                    let ops: &[(&str, Kind)] = &[
                        ("...", Kind::Ellipsis),
                        ("::", Kind::DoubleColon),
                        ("==", Kind::Op),
                        ("!=", Kind::Op),
                        ("<=", Kind::Op),
                        (">=", Kind::Op),
                        ("&&", Kind::Op),
                        ("||", Kind::Op),
                        ("=>", Kind::Op),
                        ("=", Kind::Equal),
                        ("!", Kind::Bang),
                        ("-", Kind::Minus),
                        (",", Kind::Comma),
                        (".", Kind::Dot),
                        ("[", Kind::OBrack),
                        ("]", Kind::CBrack),
                        ("(", Kind::OParen),
                        (")", Kind::CParen),
                        ("<", Kind::Op),
                        (">", Kind::Op),
                        ("+", Kind::Op),
                        ("*", Kind::Op),
                        ("/", Kind::Op),
                        ("%", Kind::Op),
                        ("?", Kind::Op),
                        (":", Kind::Op),
                    ];
                    match ops.iter().find(|(text, _)| rest.starts_with(text)) {
                        Some((text, kind)) => (*kind, text.len()),
                        None => return err(pos, "unexpected character"),
                    }
                };
                pos += len;
                tok(&mut out, kind, start..pos);
            }
            Frame::Quoted => {
                let start = pos;
                loop {
                    let rest = &src[pos..];
                    if rest.is_empty() || rest.starts_with('\n') || rest.starts_with("\r\n") {
                        return err(start, "unterminated string: a `\"` has no closing `\"`");
                    }
                    if rest.starts_with("$${") || rest.starts_with("%%{") {
                        pos += 3;
                    } else if let Some(escaped) = rest.strip_prefix('\\') {
                        pos += 1 + escaped.chars().next().map_or(0, char::len_utf8);
                    } else if rest.starts_with('"')
                        || rest.starts_with("${")
                        || rest.starts_with("%{")
                    {
                        break;
                    } else {
                        pos += rest.chars().next().map_or(1, char::len_utf8);
                    }
                }
                if pos > start {
                    tok(&mut out, Kind::QuotedLit, start..pos);
                }
                let rest = &src[pos..];
                if rest.starts_with('"') {
                    stack.pop();
                    tok(&mut out, Kind::CQuote, pos..pos + 1);
                    pos += 1;
                } else {
                    pos = open_sequence(src, pos, &mut out, &mut stack);
                }
            }
            Frame::Heredoc { marker, line_start } => {
                if *line_start {
                    let line_end = src[pos..].find('\n').map_or(src.len(), |i| pos + i);
                    let line = src[pos..line_end].trim_end_matches('\r');
                    if line.trim_start_matches([' ', '\t']) == marker.as_str() {
                        let end = pos + line.len();
                        tok(&mut out, Kind::CHeredoc, pos..end);
                        pos = end;
                        stack.pop();
                        continue;
                    }
                    if pos >= src.len() {
                        return err(pos, "unterminated heredoc: its closing marker is missing");
                    }
                }
                let start = pos;
                *line_start = false;
                loop {
                    let rest = &src[pos..];
                    if rest.is_empty() {
                        break;
                    }
                    if rest.starts_with("$${") || rest.starts_with("%%{") {
                        pos += 3;
                    } else if rest.starts_with("${") || rest.starts_with("%{") {
                        break;
                    } else if rest.starts_with('\n') {
                        pos += 1;
                        *line_start = true;
                        break;
                    } else {
                        pos += rest.chars().next().map_or(1, char::len_utf8);
                    }
                }
                if pos > start {
                    tok(&mut out, Kind::StringLit, start..pos);
                }
                if !*line_start && pos < src.len() {
                    pos = open_sequence(src, pos, &mut out, &mut stack);
                } else if pos >= src.len() && !*line_start {
                    return err(pos, "unterminated heredoc: its closing marker is missing");
                }
            }
        }
    }
    Ok(out)
}

/// Lexes `${`, `${~`, `%{` or `%{~` at `pos` and enters the sequence; returns the new offset.
fn open_sequence<'a>(
    src: &'a str,
    pos: usize,
    out: &mut Vec<Token<'a>>,
    stack: &mut Vec<Frame>,
) -> usize {
    let kind = if src[pos..].starts_with('$') {
        Kind::TemplateInterp
    } else {
        Kind::TemplateControl
    };
    let len = if src[pos + 2..].starts_with('~') {
        3
    } else {
        2
    };
    out.push(Token {
        kind,
        text: &src[pos..pos + len],
    });
    stack.push(Frame::Code {
        interp: true,
        braces: 0,
    });
    pos + len
}

fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(0);
    if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i = digits(i + 1);
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < b.len() && matches!(b[j], b'+' | b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = digits(j);
        }
    }
    i
}

fn bracket_change(k: Kind) -> i32 {
    match k {
        Kind::OBrace
        | Kind::OBrack
        | Kind::OParen
        | Kind::TemplateInterp
        | Kind::TemplateControl => 1,
        Kind::CBrace | Kind::CBrack | Kind::CParen | Kind::TemplateSeqEnd => -1,
        _ => 0,
    }
}

/// Whether one space separates `subject` from `after` (`before` precedes `subject` on the
/// same line). `None` is the edge of the line.
fn space_between(before: Option<Token<'_>>, subject: Token<'_>, after: Token<'_>) -> bool {
    use Kind::*;
    let (s, a) = (subject.kind, after.kind);
    match () {
        _ if a == Newline => false,
        _ if s == Ident && a == OParen => false,
        _ if (s == Ident && a == DoubleColon) || (s == DoubleColon && a == Ident) => false,
        _ if s == Dot || a == Dot => false,
        _ if a == Comma || a == Ellipsis => false,
        _ if s == Comma => true,
        _ if matches!(s, QuotedLit | StringLit | OQuote | OHeredoc)
            || matches!(a, QuotedLit | StringLit | CQuote | CHeredoc) =>
        {
            false
        }
        // `in` of a `for` before a tuple: `[for x in [a] : x]`.
        _ if s == Ident && subject.text == "in" && before.is_some_and(|b| b.kind == Ident) => true,
        _ if a == OBrack && (s == Ident || s == Number || bracket_change(s) < 0) => false,
        _ if s == Minus => match before {
            None => false,
            // Negation after an opening bracket, a separator or an operator.
            Some(b) => !matches!(
                b.kind,
                OParen
                    | OBrace
                    | OBrack
                    | Equal
                    | Comma
                    | Minus
                    | Bang
                    | Op
                    | TemplateInterp
                    | TemplateControl
            ),
        },
        _ if s == Bang => false,
        _ if s == OBrace || a == CBrace => !(s == OBrace && a == CBrace),
        _ if matches!(s, TemplateInterp | TemplateControl) && a == OBrace => true,
        _ if s == CBrace && a == TemplateSeqEnd => true,
        _ if s == TemplateSeqEnd && matches!(a, TemplateInterp | TemplateControl) => false,
        _ if bracket_change(s) > 0 => false,
        _ if bracket_change(a) < 0 => false,
        _ => true,
    }
}

/// One line of tokens (without its newline), split into cells.
struct Line<'a> {
    tokens: Vec<Token<'a>>,
    /// Spaces before each token.
    spaces: Vec<usize>,
    /// Index of the `=` when the line is `NAME = VALUE` with the value closed on this line.
    assign: Option<usize>,
    /// Whether the last token is a trailing comment.
    comment: bool,
    /// The newline ending it (empty at the end of the input).
    end: &'a str,
}

impl Line<'_> {
    /// Width in characters of tokens `range`, with the spaces before them.
    fn columns(&self, range: Range<usize>) -> usize {
        range
            .map(|i| self.spaces[i] + self.tokens[i].text.chars().count())
            .sum()
    }

    fn code_end(&self) -> usize {
        self.tokens.len() - usize::from(self.comment)
    }
}

/// Formats HCL source the way `packer fmt` does. The input must be lexically valid HCL.
pub fn format(src: &str) -> Result<String, LexError> {
    let tokens = lex(src)?;
    let mut lines: Vec<Line<'_>> = Vec::new();
    let mut current = Vec::new();
    for t in tokens {
        if t.kind == Kind::Newline {
            lines.push(new_line(std::mem::take(&mut current), t.text));
        } else {
            current.push(t);
        }
    }
    lines.push(new_line(current, ""));

    indent(&mut lines);
    align(&mut lines, |l| l.assign.map(|a| (0..a, a)));
    align(&mut lines, |l| {
        l.comment.then(|| (0..l.code_end(), l.tokens.len() - 1))
    });

    let mut out = String::with_capacity(src.len());
    for line in &lines {
        for (t, n) in line.tokens.iter().zip(&line.spaces) {
            out.extend(std::iter::repeat_n(' ', *n));
            if t.kind == Kind::Comment && !t.text.starts_with("/*") {
                out.push_str(t.text.trim_end());
            } else {
                out.push_str(t.text);
            }
        }
        out.push_str(line.end);
    }
    Ok(out)
}

fn new_line<'a>(tokens: Vec<Token<'a>>, end: &'a str) -> Line<'a> {
    let comment = tokens.len() > 1 && tokens.last().is_some_and(|t| t.kind == Kind::Comment);
    let code = tokens.len() - usize::from(comment);
    let mut assign = None;
    if let Some(eq) = tokens[..code]
        .iter()
        .position(|t| t.kind == Kind::Equal)
        .filter(|&i| i > 0)
    {
        let mut net = 0;
        for t in &tokens[eq..code] {
            net += bracket_change(t.kind);
            if t.kind == Kind::OHeredoc {
                break;
            }
        }
        if net == 0 {
            assign = Some(eq);
        }
    }
    let mut spaces = vec![0; tokens.len()];
    for i in 1..tokens.len() {
        let before = i.checked_sub(2).map(|j| tokens[j]);
        spaces[i] = usize::from(space_between(before, tokens[i - 1], tokens[i]));
    }
    Line {
        tokens,
        spaces,
        assign,
        comment,
        end,
    }
}

/// Two spaces per open bracket level; a line closing brackets is indented at the level it
/// closes to. Brackets opened by a heredoc's content do not count.
fn indent(lines: &mut [Line<'_>]) {
    let mut levels: Vec<i32> = Vec::new();
    for line in lines.iter_mut() {
        if line.tokens.is_empty() {
            continue;
        }
        let mut net = 0;
        for t in &line.tokens {
            net += bracket_change(t.kind);
            if t.kind == Kind::OHeredoc {
                break;
            }
        }
        if net < 0 {
            let mut closed = -net;
            while closed > 0 {
                let Some(top) = levels.last_mut() else { break };
                if closed >= *top {
                    closed -= *top;
                    levels.pop();
                } else {
                    *top -= closed;
                    closed = 0;
                }
            }
        }
        line.spaces[0] = 2 * levels.len();
        if net > 0 {
            levels.push(net);
        }
    }
}

/// Aligns, in runs of consecutive lines that have one, the token `cell(line).1` one space
/// after the widest `cell(line).0` of the run.
fn align(lines: &mut [Line<'_>], cell: impl Fn(&Line<'_>) -> Option<(Range<usize>, usize)>) {
    let mut i = 0;
    while i < lines.len() {
        let run_end = (i..lines.len())
            .find(|&j| cell(&lines[j]).is_none())
            .unwrap_or(lines.len());
        if run_end == i {
            i += 1;
            continue;
        }
        let widest = (i..run_end)
            .filter_map(|j| cell(&lines[j]).map(|(lead, _)| lines[j].columns(lead)))
            .max()
            .unwrap_or(0);
        for line in &mut lines[i..run_end] {
            if let Some((lead, at)) = cell(line) {
                let width = line.columns(lead);
                line.spaces[at] = widest - width + 1;
            }
        }
        i = run_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_packer() {
        #[rustfmt::skip]
        let table: &[(&str, &str, &str)] = &[
            ("aligns runs of attributes",
             "a=1\nbbb  =  2\n\ncc = 3\n",
             "a   = 1\nbbb = 2\n\ncc = 3\n"),
            ("indents by nesting, two spaces",
             "source \"qemu\" \"x\" {\n\t\tcpus = 2\nnested {\nk = \"v\"\n}\n}\n",
             "source \"qemu\" \"x\" {\n  cpus = 2\n  nested {\n    k = \"v\"\n  }\n}\n"),
            ("a multi-line value ends the run",
             "a = 1\nbb = {\nc = 2\ndddd = 3\n}\neeeee = 4\nf = 5\n",
             "a = 1\nbb = {\n  c    = 2\n  dddd = 3\n}\neeeee = 4\nf     = 5\n"),
            ("operators, commas, calls and indexes",
             "x = [ 1,2 , 3 ]\ny = upper( var.a )[0]\nz = a+b*-c\nw = ! var.b\nv = var.l[ * ].id\nu = -1\n",
             "x = [1, 2, 3]\ny = upper(var.a)[0]\nz = a + b * -c\nw = !var.b\nv = var.l[*].id\nu = -1\n"),
            ("objects on one line and empty blocks",
             "m = {a=1,b=\"x\"}\nbuild {}\n",
             "m = { a = 1, b = \"x\" }\nbuild {}\n"),
            ("object items one per line are aligned",
             "http_content = {\n\"/a\" = \"x\"\n\"/long\" = \"y\"\n}\n",
             "http_content = {\n  \"/a\"    = \"x\"\n  \"/long\" = \"y\"\n}\n"),
            ("lists of strings keep their text",
             "boot_command = [\n\"<esc><wait> \",\n  \"auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/x\",\n]\n",
             "boot_command = [\n  \"<esc><wait> \",\n  \"auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/x\",\n]\n"),
            ("comments kept, re-indented, trailing ones aligned",
             "# top\nsource \"q\" \"x\" {\n      // inside\n  a = 1 # one\n  bbb = 22   # two\n  /* block */\n}\n",
             "# top\nsource \"q\" \"x\" {\n  // inside\n  a   = 1  # one\n  bbb = 22 # two\n  /* block */\n}\n"),
            ("trailing whitespace removed, blank lines kept",
             "a = 1   \n\n\n   \nb = 2 # c   \n",
             "a = 1\n\n\n\nb = 2 # c\n"),
            ("interpolations tightened, literal text untouched",
             "a = \"${ var.x }-${upper( \"y\" )}  z \"\nb = \"$${ keep }\"\n",
             "a = \"${var.x}-${upper(\"y\")}  z \"\nb = \"$${ keep }\"\n"),
            ("heredocs are not touched inside, and align like one line",
             "a = <<EOF\n  keep   this\n${ var.x }\nEOF\nbb = 2\nc = <<-EOT\n    x\n    EOT\n",
             "a  = <<EOF\n  keep   this\n${var.x}\nEOF\nbb = 2\nc  = <<-EOT\n    x\n    EOT\n"),
            ("for expressions and conditionals",
             "l = [for s in var.l: upper(s) if s!=\"\"]\nm = {for k,v in var.m: k=>v}\nc = var.a?1:2\n",
             "l = [for s in var.l : upper(s) if s != \"\"]\nm = { for k, v in var.m : k => v }\nc = var.a ? 1 : 2\n"),
            ("a line closing and opening brackets",
             "a = [\n{\nx = 1\n},\n{\ny = 2\n}\n]\n",
             "a = [\n  {\n    x = 1\n  },\n  {\n    y = 2\n  }\n]\n"),
            ("CRLF line ends are kept",
             "a=1\r\nbb=2\r\n",
             "a  = 1\r\nbb = 2\r\n"),
            ("no newline at the end stays so",
             "a=1",
             "a = 1"),
            ("escapes in strings",
             "a = \"q\\\"${x}\\\\\"\n",
             "a = \"q\\\"${x}\\\\\"\n"),
            ("template directives",
             "a = \"%{ if var.x ~}yes%{ else }no%{ endif }\"\n",
             "a = \"%{if var.x~}yes%{else}no%{endif}\"\n"),
        ];
        for (reason, input, want) in table {
            let got = format(input).unwrap_or_else(|e| panic!("{reason}: {e:?}"));
            assert_eq!(got, *want, "{reason}");
            assert_eq!(format(&got).as_deref(), Ok(*want), "{reason}: idempotent");
        }
    }

    #[test]
    fn lexing_errors_have_offsets() {
        let table: &[(&str, usize, &str)] = &[
            ("a = \"open\n", 5, "unterminated string"),
            ("a = <<EOF\nx\n", 12, "unterminated heredoc"),
            ("a = /* x", 4, "unterminated `/*` comment"),
            ("a = `", 4, "unexpected character"),
            ("a = \"${x\"\n", 9, "unterminated string"),
        ];
        for (input, offset, message) in table {
            let e = format(input).expect_err(input);
            assert_eq!(e.offset, *offset, "{input:?}");
            assert!(e.message.contains(message), "{input:?}: {}", e.message);
        }
    }
}
