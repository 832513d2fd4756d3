use std::collections::BTreeSet;

use hcl::edit::parser::parse_expr;

use super::*;
use crate::template::diag::SourceFile;
use crate::template::eval::{Scope, describe};

/// The directory file functions resolve against in these tests, with `hello.txt` (`hi\n`),
/// `t.tpl` and `sub/a.cfg`, `sub/b.cfg`.
fn fixture_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path();
        std::fs::write(p.join("hello.txt"), "hi\n").expect("write");
        std::fs::write(
            p.join("t.tpl"),
            "name=${name}\n%{ for p in pkgs ~}\n- ${upper(p)}\n%{ endfor ~}\nip={{ .HTTPIP }}\n",
        )
        .expect("write");
        std::fs::create_dir(p.join("sub")).expect("mkdir");
        std::fs::write(p.join("sub/a.cfg"), "").expect("write");
        std::fs::write(p.join("sub/b.cfg"), "").expect("write");
        std::fs::write(p.join("bin"), [0xff, 0xfe]).expect("write");
        dir
    })
    .path()
}

fn context() -> Context<'static> {
    let mut ctx = Context::new();
    declare(&mut ctx);
    let mut var = hcl::Map::new();
    var.insert(
        "m".to_owned(),
        Value::Object(hcl::Map::from_iter([("a".to_owned(), Value::from(1))])),
    );
    var.insert("secret".to_owned(), s("hunter2"));
    ctx.declare_var("var", Value::Object(var));
    ctx
}

fn eval(src: &str) -> Result<Value, String> {
    let expr = parse_expr(src).unwrap_or_else(|e| panic!("`{src}` does not parse: {e}"));
    evaluate(&expr, &context(), Some(fixture_dir())).map_err(|f| match f {
        Failure::Eval(e) => describe(e.kind()),
        Failure::At(_, m) => m,
    })
}

/// The value of an HCL literal, to write expected values in HCL.
fn lit(src: &str) -> Value {
    let expr: hcl::Expression = parse_expr(src)
        .unwrap_or_else(|e| panic!("`{src}` does not parse: {e}"))
        .into();
    expr.evaluate(&Context::new())
        .unwrap_or_else(|e| panic!("`{src}`: {e}"))
}

#[test]
fn calls_give_values() {
    #[rustfmt::skip]
    let table: &[(&str, &str)] = &[
        // Strings.
        (r#"upper("abc")"#, r#""ABC""#),
        (r#"lower("ÀB")"#, r#""àb""#),
        (r#"upper(5)"#, r#""5""#),
        (r#"title("hello wORLD-x")"#, r#""Hello WORLD-X""#),
        (r#"join("-", ["a", "b"], ["c"])"#, r#""a-b-c""#),
        (r#"join(",", [1, true])"#, r#""1,true""#),
        (r#"split(",", "a,,b")"#, r#"["a", "", "b"]"#),
        (r#"split(",", "")"#, r#"[""]"#),
        (r#"replace("a-b-c", "-", "_")"#, r#""a_b_c""#),
        (r#"replace("v1.2.3", "/v(\\d+)\\..*/", "major $1")"#, r#""major 1""#),
        (r#"regex_replace("hello world", "o(.)", "0$1")"#, r#""hell0 w0rld""#),
        (r#"regex("[a-z]+", "123abc456")"#, r#""abc""#),
        (r#"regex("(\\d+)-(\\d+)", "x 10-20")"#, r#"["10", "20"]"#),
        (r#"regex("(?P<maj>\\d+)\\.(?P<min>\\d+)", "v12.4")"#, r#"{maj = "12", min = "4"}"#),
        (r#"regexall("\\d", "a1b2")"#, r#"["1", "2"]"#),
        (r#"regexall("z", "a1b2")"#, r#"[]"#),
        (r#"trim("?!hi!?", "!?")"#, r#""hi""#),
        (r#"trimspace("  a b \n")"#, r#""a b""#),
        (r#"trimprefix("prefix-x", "prefix-")"#, r#""x""#),
        (r#"trimprefix("x", "prefix-")"#, r#""x""#),
        (r#"trimsuffix("a.iso", ".iso")"#, r#""a""#),
        (r#"chomp("a\r\n\n")"#, r#""a""#),
        (r#"indent(2, "a\nb\n")"#, r#""a\n  b\n  ""#),
        (r#"substr("hello", 1, 3)"#, r#""ell""#),
        (r#"substr("hello", -3, -1)"#, r#""llo""#),
        (r#"substr("hello", 10, 1)"#, r#""""#),
        (r#"substr("héllo", 0, 2)"#, r#""hé""#),
        (r#"strrev("abc")"#, r#""cba""#),
        (r#"startswith("debian-12", "debian")"#, "true"),
        (r#"endswith("debian-12", "11")"#, "false"),
        (r#"strcontains("debian-12", "an-1")"#, "true"),
        // format: Go's verbs.
        (r#"format("%s-%d", "a", 3)"#, r#""a-3""#),
        (r#"format("%05d|%-4s|%4s|%%", 42, "ab", "cd")"#, r#""00042|ab  |  cd|%""#),
        (r#"format("%.2f %e", 3.14159, 1234.5)"#, r#""3.14 1.234500e+03""#),
        (r#"format("%x %X %o %b %+d", 255, 255, 8, 5, 3)"#, r#""ff FF 10 101 +3""#),
        (r#"format("%q", "a\"b")"#, r#""\"a\\\"b\"""#),
        (r#"format("%v %v %t", "s", [1, "x"], true)"#, r#""s [1,\"x\"] true""#),
        (r#"format("%#v", {b = 1, a = "x"})"#, r#""{\"a\":\"x\",\"b\":1}""#),
        (r#"format("%[2]s %[1]s", "a", "b")"#, r#""b a""#),
        (r#"format("%.3s", "abcdef")"#, r#""abc""#),
        (r#"formatlist("%s=%s", ["a", "b"], "x")"#, r#"["a=x", "b=x"]"#),
        (r#"formatlist("%s-%d", ["a", "b"], [1, 2])"#, r#"["a-1", "b-2"]"#),
        // Collections.
        (r#"length("héllo")"#, "5"),
        (r#"length([1, 2])"#, "2"),
        (r#"length({a = 1})"#, "1"),
        (r#"concat([1], [], [2, 3])"#, "[1, 2, 3]"),
        (r#"merge({a = 1, b = 2}, null, {b = 3})"#, "{a = 1, b = 3}"),
        (r#"lookup({a = "x"}, "a")"#, r#""x""#),
        (r#"lookup({a = "x"}, "b", "dflt")"#, r#""dflt""#),
        (r#"lookup(var.m, "a", 0)"#, "1"),
        (r#"contains(["a", "b"], "b")"#, "true"),
        (r#"contains([1, 2], 3)"#, "false"),
        (r#"coalesce("", null, "x", "y")"#, r#""x""#),
        (r#"coalescelist([], ["a"], ["b"])"#, r#"["a"]"#),
        (r#"compact(["a", "", null, "b"])"#, r#"["a", "b"]"#),
        (r#"distinct(["a", "b", "a", 1, 1])"#, r#"["a", "b", 1]"#),
        (r#"element(["a", "b", "c"], 4)"#, r#""b""#),
        (r#"flatten([[1, [2]], 3, []])"#, "[1, 2, 3]"),
        (r#"index(["a", "b"], "b")"#, "1"),
        (r#"keys({b = 1, a = 2})"#, r#"["a", "b"]"#),
        (r#"values({b = 1, a = 2})"#, "[2, 1]"),
        (r#"reverse([1, 2, 3])"#, "[3, 2, 1]"),
        (r#"slice(["a", "b", "c", "d"], 1, 3)"#, r#"["b", "c"]"#),
        (r#"sort(["b", "a", "C"])"#, r#"["C", "a", "b"]"#),
        (r#"zipmap(["a", "b"], [1, 2])"#, "{a = 1, b = 2}"),
        (r#"range(3)"#, "[0, 1, 2]"),
        (r#"range(1, 4)"#, "[1, 2, 3]"),
        (r#"range(10, 0, -4)"#, "[10, 6, 2]"),
        (r#"range(3, 0)"#, "[3, 2, 1]"),
        (r#"chunklist([1, 2, 3], 2)"#, "[[1, 2], [3]]"),
        (r#"setunion(["a"], ["b", "a"])"#, r#"["a", "b"]"#),
        (r#"setintersection(["a", "b"], ["b", "c"])"#, r#"["b"]"#),
        (r#"alltrue([true, "true"])"#, "true"),
        (r#"anytrue([])"#, "false"),
        // Numbers.
        (r#"min(3, 1.5, 2)"#, "1.5"),
        (r#"max(3, "7", 2)"#, "7"),
        (r#"sum([1, 2, 3.5])"#, "6.5"),
        (r#"abs(-4)"#, "4"),
        (r#"ceil(1.2)"#, "2"),
        (r#"floor(-1.2)"#, "-2"),
        (r#"pow(2, 10)"#, "1024"),
        (r#"log(8, 2)"#, "3"),
        (r#"signum(-9)"#, "-1"),
        (r#"parseint("ff", 16)"#, "255"),
        (r#"parseint("-101", 2)"#, "-5"),
        (r#"parseint("Z", 62)"#, "61"),
        // Conversions.
        (r#"tostring(12)"#, r#""12""#),
        (r#"tostring(null)"#, "null"),
        (r#"tonumber("4096")"#, "4096"),
        (r#"tobool("true")"#, "true"),
        (r#"tolist(["a"])"#, r#"["a"]"#),
        (r#"toset(["a", "a"])"#, r#"["a"]"#),
        (r#"tomap({a = 1})"#, "{a = 1}"),
        // Encodings and hashes.
        (r#"jsonencode({b = [1, true, null], a = "<x>"})"#, r#""{\"a\":\"\\u003cx\\u003e\",\"b\":[1,true,null]}""#),
        (r#"jsondecode("{\"a\": [1, \"x\"], \"b\": 2.5}")"#, r#"{a = [1, "x"], b = 2.5}"#),
        (r#"yamlencode({b = [1, "x"], a = {c = true}})"#, r#""\"a\":\n  \"c\": true\n\"b\":\n- 1\n- \"x\"\n""#),
        (r#"yamlencode([])"#, r#""[]\n""#),
        (r#"yamlencode([{a = 1, b = 2}])"#, r#""- \"a\": 1\n  \"b\": 2\n""#),
        (r#"base64encode("hello")"#, r#""aGVsbG8=""#),
        (r#"base64decode("aGVsbG8=")"#, r#""hello""#),
        (r#"urlencode("a b&c/é")"#, r#""a+b%26c%2F%C3%A9""#),
        (r#"md5("abc")"#, r#""900150983cd24fb0d6963f7d28e17f72""#),
        (r#"sha1("abc")"#, r#""a9993e364706816aba3e25717850c26c9cd0d89d""#),
        (r#"sha256("abc")"#, r#""ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad""#),
        (r#"substr(sha512("abc"), 0, 16)"#, r#""ddaf35a193617aba""#),
        // Time.
        (r#"formatdate("YYYY-MM-DD hh:mm:ss", "2024-02-29T23:05:09Z")"#, r#""2024-02-29 23:05:09""#),
        (r#"formatdate("YYYYMMDD'T'hhmm", "2024-01-05T07:08:00Z")"#, r#""20240105T0708""#),
        (r#"formatdate("EEEE, DD-MMM-YY H:mm AA aa", "2023-12-31T00:30:00Z")"#, r#""Sunday, 31-Dec-23 12:30 AM am""#),
        (r#"formatdate("EEE MMMM D h 'o''clock' ZZZ", "2024-07-04T15:00:00+02:00")"#, r#""Thu July 4 15 o'clock +0200""#),
        (r#"formatdate("Z ZZZZ ZZZZZ ZZZ", "2024-07-04T15:00:00Z")"#, r#""Z +0000 +00:00 UTC""#),
        (r#"formatdate("hh:mm Z", "1969-12-31T23:59:59.5-05:30")"#, r#""23:59 -05:30""#),
        (r#"formatdate("''", "2024-01-01T00:00:00Z")"#, r#""'""#),
        (r#"timeadd("2024-02-28T23:00:00Z", "1h30m")"#, r#""2024-02-29T00:30:00Z""#),
        (r#"timeadd("2024-01-01T00:00:00+01:00", "-10s")"#, r#""2023-12-31T23:59:50+01:00""#),
        (r#"length(uuidv4())"#, "36"),
        (r#"uuidv5("dns", "python.org")"#, r#""886313e1-3b8a-5372-9b90-0c9aee199e5d""#),
        (r#"uuidv5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org")"#, r#""886313e1-3b8a-5372-9b90-0c9aee199e5d""#),
        (r#"formatdate("YYYY", timestamp()) == formatdate("YYYY", timestamp())"#, "true"),
        // Issue 13: the functions real templates use that kiln lacked.
        (r#"rfc3339_parse("2023-07-25T23:43:16Z").unix"#, "1690328596"),
        (r#"rfc3339_parse("2023-07-25 23:43:16.5+02:00")"#, r#"{year = 2023, year_day = 206, month = 7, month_name = "July", day = 25, weekday = 2, weekday_name = "Tuesday", hour = 23, minute = 43, second = 16, unix = 1690321396, iso_year = 2023, iso_week = 30}"#),
        (r#"unix_timestamp_parse(0).weekday_name"#, r#""Thursday""#),
        (r#"unix_timestamp_parse(1709251199).day"#, "29"),
        (r#"length(legacy_isotime("2006-01-02"))"#, "10"),
        (r#"legacy_isotime("2006") == formatdate("YYYY", timestamp())"#, "true"),
        (r#"legacy_strftime("%Y%m%d") == formatdate("YYYYMMDD", timestamp())"#, "true"),
        (r#"cidrhost("10.12.112.0/20", 16)"#, r#""10.12.112.16""#),
        (r#"cidrhost("10.12.112.0/20", 268)"#, r#""10.12.113.12""#),
        (r#"cidrhost("10.0.0.0/24", -1)"#, r#""10.0.0.255""#),
        (r#"cidrhost("fd00:fd12:3456:7890:00a2::/72", 34)"#, r#""fd00:fd12:3456:7890::22""#),
        (r#"cidrnetmask("172.16.0.0/12")"#, r#""255.240.0.0""#),
        (r#"cidrsubnet("172.16.0.0/12", 4, 2)"#, r#""172.18.0.0/16""#),
        (r#"cidrsubnet("10.1.2.0/24", 4, 15)"#, r#""10.1.2.240/28""#),
        (r#"cidrsubnet("fd00:fd12:3456:7890::/56", 16, 162)"#, r#""fd00:fd12:3456:7800:a200::/72""#),
        (r#"cidrsubnets("10.1.0.0/16", 4, 4, 8, 4)"#, r#"["10.1.0.0/20", "10.1.16.0/20", "10.1.32.0/24", "10.1.48.0/20"]"#),
        (r#"cidrsubnets("fd00:fd12:3456:7890::/56", 16, 16, 16, 32)"#, r#"["fd00:fd12:3456:7800::/72", "fd00:fd12:3456:7800:100::/72", "fd00:fd12:3456:7800:200::/72", "fd00:fd12:3456:7800:300::/88"]"#),
        (r#"setproduct(["a", "b"], [1, 2])"#, r#"[["a", 1], ["a", 2], ["b", 1], ["b", 2]]"#),
        (r#"setproduct(["a"], [])"#, "[]"),
        (r#"csvdecode("a,b\n1,x y\n\"q,\"\"\",2\n")"#, r#"[{a = "1", b = "x y"}, {a = "q,\"", b = "2"}]"#),
        (r#"csvdecode("a,b\n")"#, "[]"),
        (r#"yamldecode("a: 1\nb: [x, true, 2.5, null]\nc:\n  d: hi\n")"#, r#"{a = 1, b = ["x", true, 2.5, null], c = {d = "hi"}}"#),
        (r#"yamldecode("")"#, "null"),
        (r#"yamldecode("- &x {k: v}\n- *x\n")"#, r#"[{k = "v"}, {k = "v"}]"#),
        (r#"textencodebase64("Hi", "UTF-16LE")"#, r#""SABpAA==""#),
        (r#"textencodebase64("Hi", "utf-8")"#, r#""SGk=""#),
        (r#"textdecodebase64("SABpAA==", "UTF-16LE")"#, r#""Hi""#),
        (r#"textdecodebase64("/v8ASABp", "UTF-16")"#, r#""Hi""#),
        (r#"textdecodebase64("6Q==", "ISO-8859-1")"#, r#""é""#),
        (r#"convert(["a", 1], list(string))"#, r#"["a", "1"]"#),
        (r#"convert({a = "2"}, map(number))"#, "{a = 2}"),
        (r#"convert({a = 1, b = 2}, object({a = number}))"#, "{a = 1}"),
        (r#"convert("true", bool)"#, "true"),
        // Files, relative to the template directory.
        (r#"file("hello.txt")"#, r#""hi\n""#),
        (r#"fileexists("hello.txt")"#, "true"),
        (r#"fileexists("nope.txt")"#, "false"),
        (r#"filebase64("bin")"#, r#""//4=""#),
        (r#"fileset(".", "sub/*.cfg")"#, r#"["sub/a.cfg", "sub/b.cfg"]"#),
        (r#"templatefile("t.tpl", {name = "deb", pkgs = ["vim", "curl"]})"#, r#""name=deb\n- VIM\n- CURL\nip={{ .HTTPIP }}\n""#),
        (r#"basename("/a/b.iso")"#, r#""b.iso""#),
        (r#"basename("a/b/")"#, r#""b""#),
        (r#"basename("")"#, r#"".""#),
        (r#"dirname("/a/b/c.iso")"#, r#""/a/b""#),
        (r#"dirname("c.iso")"#, r#"".""#),
        (r#"dirname("/c")"#, r#""/""#),
        (r#"abspath("/a/./b/../c")"#, r#""/a/c""#),
        // try and can: evaluated lazily.
        (r#"try(var.m.nope, "fallback")"#, r#""fallback""#),
        (r#"try(var.m.a, "fallback")"#, "1"),
        (r#"can(var.m.nope)"#, "false"),
        (r#"can(regex("^[0-9]+$", "123"))"#, "true"),
        (r#"can(regex("^[0-9]+$", "12a"))"#, "false"),
        (r#""x-${try(var.m.b, "d")}""#, r#""x-d""#),
        (r#"[for k, v in var.m : try(var.m.z, "d")]"#, r#"["d"]"#),
    ];
    for (call, want) in table {
        assert_eq!(eval(call), Ok(lit(want)), "{call}");
    }
}

#[test]
fn bad_calls_say_why_without_values() {
    #[rustfmt::skip]
    let table: &[(&str, &str)] = &[
        (r#"upper(["x"])"#, "argument 1 must be a string, found list"),
        (r#"upper("a", "b")"#, "expected 1 positional arguments, got 2"),
        (r#"lookup({}, "k")"#, "the key is not in the map, and no default was given"),
        (r#"lookup({}, "k", 1, 2)"#, "takes at most 3 arguments, got 4"),
        (r#"tonumber(var.secret)"#, "argument 1 cannot be converted to a number"),
        (r#"regex("(", "x")"#, "invalid regular expression"),
        (r#"regex("z", var.secret)"#, "the pattern did not match any part of the string"),
        (r#"regex("(?P<a>x)(y)", "xy")"#, "cannot mix named and unnamed capture groups"),
        (r#"format("%d", "x")"#, "`%d` needs a number for argument 1, found string"),
        (r#"format("%d", 1.5)"#, "`%d` needs a whole number for argument 1"),
        (r#"format("%s %s", "a")"#, "not enough arguments for the verb at character 4"),
        (r#"format("%s", "a", "b")"#, "too many arguments: the format string uses 1 of 2"),
        (r#"format("%y", 1)"#, "unsupported format verb `%y`"),
        (r#"formatlist("%s%s", ["a"], ["b", "c"])"#, "argument 3 has 2 elements, an earlier list has 1"),
        (r#"formatdate("YYYY-MM-DD", "2024-13-01T00:00:00Z")"#, "not an RFC 3339 timestamp"),
        (r#"formatdate("YYYY-MM-DD", "yesterday")"#, "not an RFC 3339 timestamp"),
        (r#"formatdate("YYYY-mm-DD Q", "2024-01-01T00:00:00Z")"#, "invalid date format verb `Q`"),
        (r#"formatdate("'open", "2024-01-01T00:00:00Z")"#, "unterminated literal text"),
        (r#"timeadd("2024-01-01T00:00:00Z", "soon")"#, "not a duration"),
        (r#"file("missing.txt")"#, "cannot read `"),
        (r#"file("bin")"#, "is not UTF-8 text; use `filebase64`"),
        (r#"fileexists("sub")"#, "exists but is not a file"),
        (r#"templatefile("t.tpl", {name = "x"})"#, "in template `t.tpl`: undefined name `pkgs`"),
        (r#"uuidv5("planet", "x")"#, "the namespace must be dns, url, oid, x500 or a UUID"),
        (r#"element([], 0)"#, "cannot take an element of an empty list"),
        (r#"index(["a"], "b")"#, "the item is not in the list"),
        (r#"slice([1, 2], 1, 3)"#, "the range 1..3 is not within a list of 2 elements"),
        (r#"zipmap(["a"], [])"#, "1 keys but 0 values"),
        (r#"coalesce("", null)"#, "every argument is null or an empty string"),
        (r#"range(0, 5, -1)"#, "the step goes away from the limit"),
        (r#"parseint("12", 1)"#, "the base must be between 2 and 62"),
        (r#"parseint("19", 8)"#, "the string is not a number in base 8"),
        (r#"base64decode("***")"#, "argument 1 is not valid base64"),
        (r#"jsondecode("{")"#, "invalid JSON at line 1, column 1"),
        (r#"substr("abc", 0.5, 1)"#, "argument 2 must be a whole number"),
        (r#"try(var.m.x, var.m.y)"#, "no argument of `try` could be evaluated; the last one failed with: no such key `y`"),
        (r#"can()"#, "function `can` takes 1 argument, got 0"),
        (r#"rfc3339_parse("2023-07-25")"#, "not an RFC 3339 timestamp"),
        (r#"unix_timestamp_parse(1.5)"#, "whole number of seconds"),
        (r#"cidrhost("10.0.0.0/30", 4)"#, "host number 4 is outside the prefix, which has 4 addresses"),
        (r#"cidrhost("10.0.0.0/30", -5)"#, "outside the prefix"),
        (r#"cidrsubnet("10.0.0.0/30", 3, 0)"#, "only 2 bits remain"),
        (r#"cidrsubnet("10.0.0.0/24", 2, 4)"#, "network number must be between 0 and 3"),
        (r#"cidrnetmask("fd00::/8")"#, "IPv4 prefix only"),
        (r#"cidrnetmask("10.0.0.0")"#, "not a CIDR prefix"),
        (r#"cidrsubnets("10.0.0.0/24", 1, 1, 1)"#, "not enough room left in 10.0.0.0/24 for a /25 subnet (argument 4)"),
        (r#"csvdecode("a,b\n1\n")"#, "malformed CSV at line 2"),
        (r#"yamldecode("a: [")"#, "invalid YAML at line"),
        (r#"yamldecode("a: 1\n---\nb: 2\n")"#, "several YAML documents"),
        (r#"textencodebase64("é", "US-ASCII")"#, "characters this encoding lacks"),
        (r#"textencodebase64("x", "EBCDIC")"#, "kiln does not know the encoding `EBCDIC`"),
        (r#"textdecodebase64("AA==", "UTF-16LE")"#, "not valid text in this encoding"),
        (r#"convert(var.secret, number)"#, "cannot convert the value to `number`"),
        (r#"convert("x", lisst(string))"#, "unknown type"),
        (r#"convert("x")"#, "function `convert` takes 2 arguments, got 1"),
        (r#"[for x in ["a"] : try(x.nope, x)]"#, "`try` on a `for` variable is not supported by kiln yet"),
    ];
    for (call, want) in table {
        match eval(call) {
            Ok(v) => panic!("{call}: expected an error, got {v}"),
            Err(e) => {
                assert!(e.contains(want), "{call}: {e:?} does not contain {want:?}");
                assert!(!e.contains("hunter2"), "{call}: {e:?} shows a secret");
            }
        }
    }
}

#[test]
fn every_function_is_a_packer_function_or_kiln_extra() {
    let packer: BTreeSet<&str> = PACKER_NAMES.iter().copied().collect();
    for (name, ..) in FUNCTIONS {
        assert!(
            packer.contains(name)
                || KILN_ONLY.contains(name)
                || [COERCE_BOOL, COERCE_NUMBER].contains(name),
            "`{name}` is neither Packer's nor listed in KILN_ONLY"
        );
    }
    for name in KILN_ONLY {
        assert!(!packer.contains(name), "`{name}` is Packer's");
    }
}

/// HCL's conversions where operators and conditions need a type (issue 13): an untyped
/// `-var x=false` is a bool in a condition, `-var n=2` a number in arithmetic; `==` compares
/// as written; a wrong type is reported without the hidden function's name.
#[test]
fn issue_13_operands_convert_as_in_hcl() {
    let ok = [
        (r#""false" ? 1 : 2"#, Value::from(2)),
        (r#"!"true""#, Value::Bool(false)),
        (r#""true" && true"#, Value::Bool(true)),
        (r#""2" + 1"#, Value::from(3)),
        (r#"-"2""#, Value::from(-2)),
        (r#""10" > 9"#, Value::Bool(true)),
        (r#""1" == 1"#, Value::Bool(false)),
        (r#"try("x" ? 1 : 2, 3)"#, Value::from(3)),
    ];
    for (src, want) in ok {
        assert_eq!(eval(src), Ok(want), "{src}");
    }
    let e = eval(r#""lots" + 1"#).expect_err("not a number");
    assert_eq!(e, "expected a number, found string");
    let e = eval(r#"[1] ? 1 : 2"#).expect_err("not a bool");
    assert_eq!(e, "expected a bool, found list");
}

/// The names in `eval.rs`'s list, checked against this module's table.
const PACKER_NAMES: &[&str] = crate::template::eval::PACKER_FUNCTIONS;

#[test]
fn timestamp_is_rfc3339_and_stable() {
    let a = eval("timestamp()").expect("timestamp");
    let t = Time::parse(a.as_str().expect("string")).expect("parses");
    assert_eq!(t.offset, None, "UTC, written with Z");
    assert_eq!(Time::utc(t.unix).rfc3339(), a.as_str().unwrap_or_default());
    assert_eq!(
        eval("timestamp()").expect("timestamp"),
        a,
        "one value per run"
    );
}

#[test]
fn calendar_round_trips() {
    for days in [-719468, -1, 0, 59, 365, 11016, 19782, 2932896] {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
    }
    assert_eq!(civil_from_days(19782), (2024, 2, 29));
    assert_eq!(
        Time::parse("2000-01-01T00:00:00Z").map(|t| t.fields().6),
        Ok(6),
        "a Saturday"
    );
}

#[test]
fn uuidv4_is_random_and_versioned() {
    let a = eval("uuidv4()").expect("uuid");
    let b = eval("uuidv4()").expect("uuid");
    assert_ne!(a, b);
    let text = a.as_str().expect("string");
    assert_eq!(text.as_bytes()[14], b'4', "{text}");
}

/// One attribute `x = EXPR` in a file, evaluated in `scope`: value or rendered diagnostics.
fn in_scope(scope: &Scope, expr: &str) -> Result<Value, Vec<String>> {
    let text = format!("x = {expr}\n");
    let body = hcl::edit::parser::parse_body(&text).expect("parses");
    let file = SourceFile {
        path: "t.pkr.hcl".into(),
        text: text.clone(),
        origin: None,
    };
    let attr = body.attributes().next().expect("attribute");
    let mut diags = Vec::new();
    scope
        .eval(&file, &attr.value, &mut diags)
        .ok_or_else(|| diags.iter().map(|d| d.render(None)).collect())
}

fn full_scope() -> Scope {
    let mut path = hcl::Map::new();
    path.insert(
        "root".to_owned(),
        s(fixture_dir().to_string_lossy().into_owned()),
    );
    Scope::new(BTreeSet::new(), BTreeSet::new(), path)
}

#[test]
fn env_only_in_variable_defaults() {
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(in_scope(&Scope::constants(), r#"env("HOME")"#), Ok(s(home)));
    assert_eq!(
        in_scope(
            &Scope::constants(),
            r#"env("KILN_TEST_SURELY_UNSET_VARIABLE")"#
        ),
        Ok(s(""))
    );
    assert_eq!(
        in_scope(&full_scope(), r#"env("HOME")"#),
        Err(vec![
            "t.pkr.hcl:1:5: function `env` can only be used in a variable's `default`\n\
             hint: declare `variable \"x\" { default = env(\"NAME\") }` and use `var.x`"
                .to_owned()
        ])
    );
    assert_eq!(
        in_scope(&Scope::constants(), r#"upper("a")"#),
        Err(vec![
            "t.pkr.hcl:1:5: function `upper` cannot be used in a variable's `default`\n\
             hint: a default must be a constant or `env(\"NAME\")`; compute values in `locals`"
                .to_owned()
        ])
    );
}

#[test]
fn scope_locates_function_errors_and_resolves_files() {
    assert_eq!(
        in_scope(&full_scope(), r#"file("hello.txt")"#),
        Ok(s("hi\n"))
    );
    assert_eq!(
        in_scope(&full_scope(), r#"[1, upper([])]"#),
        Err(vec![
            "t.pkr.hcl:1:5: function `upper` failed: argument 1 must be a string, found list"
                .to_owned()
        ])
    );
    assert_eq!(
        in_scope(&full_scope(), r#"[1, try(x.y)]"#),
        Err(vec!["t.pkr.hcl:1:13: unknown name `x`\nhint: variables are written `var.NAME`, locals `local.NAME`".to_owned()]),
        "names are checked before try runs"
    );
    assert_eq!(
        in_scope(&full_scope(), r#"[1, try([][0])]"#),
        Err(vec![
            "t.pkr.hcl:1:9: no argument of `try` could be evaluated; the last one failed with: \
             index 0 is out of range"
                .to_owned()
        ])
    );
    assert_eq!(
        in_scope(&full_scope(), "convert([1], list(string))"),
        Ok(lit(r#"["1"]"#)),
        "a type argument is not checked as an expression (issue 13)"
    );
    assert_eq!(
        in_scope(&full_scope(), "rsadecrypt(\"x\", \"k\")"),
        Err(vec![
            "t.pkr.hcl:1:5: function `rsadecrypt` is not supported by kiln yet".to_owned()
        ])
    );
    assert_eq!(
        in_scope(&full_scope(), "uper(\"a\")"),
        Err(vec![
            "t.pkr.hcl:1:5: unknown function `uper`\nhint: did you mean `upper`?".to_owned()
        ])
    );
}

#[test]
fn a_template_using_functions_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("http")).expect("mkdir");
    std::fs::write(
        dir.path().join("http/user-data.pkrtpl"),
        "#cloud-config\nhostname: ${host}\n",
    )
    .expect("write");
    let template = r#"
variable "user" {
  default = env("KILN_FUNCTIONS_TEST_UNSET")
}
locals {
  stamp     = formatdate("YYYYMMDD", "2024-03-09T10:00:00Z")
  user_data = templatefile("http/user-data.pkrtpl", { host = lower("Web-01") })
}
source "qemu" "m" {
  iso_url      = "https://example.org/a.iso"
  iso_checksum = "none"
  ssh_username = coalesce(var.user, "root")
  vm_name      = format("debian-%s.qcow2", local.stamp)
  http_content = { "/user-data" = local.user_data }
}
build { sources = ["source.qemu.m"] }
"#;
    std::fs::write(dir.path().join("t.pkr.hcl"), template).expect("write");
    let t = crate::template::load(
        &dir.path().join("t.pkr.hcl"),
        &crate::template::Inputs::default(),
    )
    .expect("loads");
    let Some(crate::builder::SourceConfig::Qemu(c)) = t.sources.first() else {
        panic!("no qemu source");
    };
    assert_eq!(c.vm_name, "debian-20240309.qcow2");
    assert_eq!(
        c.http_content.get("/user-data").map(String::as_str),
        Some("#cloud-config\nhostname: web-01\n"),
        "templatefile resolves against the template directory, not the working directory"
    );
    assert_eq!(c.ssh.as_ref().map(|s| s.username.as_str()), Some("root"));
}

#[test]
fn bcrypt_matches_the_reference_vector() {
    use base64::engine::{GeneralPurpose, general_purpose::NO_PAD};
    let engine = GeneralPurpose::new(&base64::alphabet::BCRYPT, NO_PAD);
    let salt: [u8; 16] = engine
        .decode("CCCCCCCCCCCCCCCCCCCCC.")
        .expect("salt decodes")
        .try_into()
        .expect("16 bytes");
    assert_eq!(
        bcrypt_hash(b"U*U", 5, &salt),
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
    );
    let h = eval(r#"bcrypt("pw", 4)"#).expect("hashes");
    let h = h.as_str().expect("string");
    assert!(h.starts_with("$2a$04$") && h.len() == 60, "{h}");
    assert_ne!(
        eval(r#"bcrypt("pw", 4)"#).expect("hashes").as_str(),
        Some(h),
        "salted"
    );
    assert_eq!(
        eval(r#"bcrypt("pw", 3)"#),
        Err("function `bcrypt` failed: the cost must be between 4 and 31".to_owned())
    );
}
