//! Unit tables: parser (precedence, errors and their positions, limits), every operator and
//! function, the error-absorption truth tables, the cost bound, and evaluation over borrowed
//! tape, serde and header data.

#![allow(clippy::unwrap_used)]

use super::value::format_double;
use super::*;
use crate::mcp::json::Decoder;

/// Evaluates with no variables and renders the value (CEL-like `Debug`) or the error kind.
fn run(src: &str) -> Result<String, ErrorKind> {
    let p = compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let binds: &[(&str, Value<'_>)] = &[];
    let act = &Bindings(binds);
    p.eval(act).map(|v| format!("{v:?}")).map_err(|e| e.kind)
}

fn check(src: &str, want: &str) {
    assert_eq!(run(src), Ok(want.to_owned()), "{src}");
}

fn fails(src: &str, kind: ErrorKind) {
    assert_eq!(run(src), Err(kind), "{src}");
}

fn compile_err(src: &str) -> CompileError {
    match compile(src) {
        Ok(p) => panic!("{src}: compiled to {p:?}"),
        Err(e) => e,
    }
}

/// Runs `f` with `args` bound to the tape of `json`.
fn with_args<R>(json: &str, f: impl FnOnce(&dyn Activation) -> R) -> R {
    Decoder::default()
        .with_tape(json.as_bytes(), |t| {
            let binds: &[(&str, Value<'_>)] = &[("args", Value::from_tape(t))];
            let act = &Bindings(binds);
            f(act)
        })
        .unwrap()
}

fn on_args(json: &str, src: &str) -> Result<String, ErrorKind> {
    let p = compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    with_args(json, |act| p.eval(act).map(|v| format!("{v:?}")).map_err(|e| e.kind))
}

#[test]
fn precedence_and_associativity() {
    for (src, want) in [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("10 - 3 - 2", "5"),
        ("100 / 10 / 5", "2"),
        ("7 % 4 * 2", "6"),
        ("-2 * 3", "-6"),
        ("--1", "1"),
        ("!!true", "true"),
        ("!true || true", "true"),
        ("true || false && false", "true"),
        ("(true || false) && false", "false"),
        ("1 < 2 == true", "true"),
        ("2 + 3 in [5]", "true"),
        ("true ? 1 : 2 + 3", "1"),
        ("false ? 1 : true ? 2 : 3", "2"),
        ("false ? 1 : 2 == 2", "true"),
        ("-[1][0]", "-1"),
        ("[1, 2, 3][1] * 2", "4"),
        ("{'a': {'b': 5}}.a.b + 1", "6"),
        ("'abc'.size() + size('de')", "5"),
        ("1 + 2 == 3 && 'a' < 'b'", "true"),
        ("[1, 2,]", "[1, 2]"),
        ("{'a': 1,}", "{\"a\": 1}"),
        ("1 // a comment\n + 1", "2"),
        ("-9223372036854775808", "-9223372036854775808"),
        ("-9223372036854775807 - 1", "-9223372036854775808"),
        ("0x1F + 0x1Fu == 62", "false"),
        ("0x1F", "31"),
        ("0x1Fu", "31u"),
        ("-0x10", "-16"),
        ("1e3", "1000.0"),
        (".5 + 2.5e-1", "0.75"),
        ("18446744073709551615u", "18446744073709551615u"),
    ] {
        // 0x1F + 0x1Fu has no overload: the row above checks the error, not a value.
        if src.starts_with("0x1F + ") {
            fails(src, ErrorKind::NoSuchOverload);
            continue;
        }
        check(src, want);
    }
}

#[test]
fn string_literals() {
    for (src, want) in [
        (r#""a\nb""#, "a\nb"),
        (r#"'it\'s'"#, "it's"),
        (r#""\x41\u00e9\U0001F600\101\a\b\f\r\t\v\\\"\'\`\?""#, "Aé😀A\u{7}\u{8}\u{c}\r\t\u{b}\\\"'`?"),
        (r#"r"\d+\n""#, "\\d+\\n"),
        (r#"R'\x'"#, "\\x"),
        ("'''a\nb'''", "a\nb"),
        (r#""""x"y""""#, "x\"y"),
        ("'é'", "é"),
    ] {
        let p = compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let binds: &[(&str, Value<'_>)] = &[];
        let act = &Bindings(binds);
        let v = p.eval(act).unwrap();
        assert_eq!(v.as_str(), Some(want), "{src}");
    }
}

#[test]
fn compile_errors_carry_positions() {
    for (src, pos, msg) in [
        ("foo(1)", 0, "unknown function \"foo\""),
        ("1 + bar(2)", 4, "unknown function \"bar\""),
        ("'a'.lower()", 3, "unknown function \"lower\""),
        ("1 +", 3, "unexpected end of expression"),
        ("(1 + 2", 6, "expected \")\", found end of expression"),
        ("1 = 2", 2, "unexpected character '='"),
        ("\"abc", 0, "unterminated string literal"),
        ("'a\nb'", 0, "newline in string literal"),
        ("\"\\q\"", 1, "invalid escape sequence"),
        ("\"\\uD800\"", 1, "escape is not a valid code point"),
        ("9223372036854775808", 0, "integer literal out of range"),
        ("-9223372036854775809", 1, "integer literal out of range"),
        ("18446744073709551616u", 0, "integer literal out of range"),
        ("1e", 0, "malformed exponent"),
        ("0x", 0, "malformed hexadecimal literal"),
        ("b'abc'", 0, "bytes literals are not supported"),
        ("if", 0, "\"if\" is a reserved word"),
        ("a.in", 2, "expected a field name, found \"in\""),
        ("x.matches(y)", 10, "the pattern of matches() must be a string literal"),
        ("'a'.matches('(')", 12, "invalid regular expression"),
        ("matches('a')", 0, "function \"matches\" takes 2 arguments, got 1"),
        ("has(a)", 4, "has() needs a field selection"),
        ("has(a.b, c)", 0, "function \"has\" takes 1 argument, got 2"),
        ("size()", 0, "function \"size\" takes 1 argument, got 0"),
        ("'a'.size(1)", 3, "method \"size\" takes 0 arguments, got 1"),
        ("'a'.startsWith()", 3, "method \"startsWith\" takes 1 argument, got 0"),
        ("[1].all(1, true)", 8, "the first argument of all() must be an identifier"),
        ("[1].all(x)", 9, "expected \",\""),
        ("[1].exists(x, true, false)", 3, "exists() takes 2 arguments"),
        ("[1].map(x, 1, 2, 3)", 3, "map() takes 2 or 3 arguments"),
        ("Foo{a: 1}", 0, "message construction is not supported"),
        ("1 2", 2, "unexpected integer 2"),
        ("a.b.", 4, "expected a field name, found end of expression"),
        ("[1, 2", 5, "expected \",\" or \"]\""),
        ("{1: 2", 5, "expected \",\" or \"}\""),
        ("{1 2}", 3, "expected \":\""),
        ("!-1", 1, "unexpected \"-\""),
        ("a ? b", 5, "expected \":\""),
        ("#", 0, "unexpected character '#'"),
    ] {
        let e = compile_err(src);
        assert_eq!(e.pos, pos, "{src}: {e}");
        assert!(e.message.starts_with(msg), "{src}: {e}");
    }
    assert_eq!(compile_err("foo(1)").to_string(), "at 0: unknown function \"foo\"");
    assert_eq!(compile_err("x + 12 + foo()").to_string(), "at 9: unknown function \"foo\"");
}

#[test]
fn declared_variables() {
    let opts = Options::gateway();
    assert!(compile_with("args.x == 1 && request.mcp.tool == 't'", &opts).is_ok());
    let e = compile_with("arg.x == 1", &opts).unwrap_err();
    assert_eq!(e.to_string(), "at 0: undeclared variable \"arg\"");
    // Comprehension variables are not top-level variables.
    assert!(compile_with("args.l.all(x, x > 1)", &opts).is_ok());
    assert!(compile_with("args.l.all(x, .x > 1)", &opts).is_err());
}

#[test]
fn limits_reject_at_compile_time_without_overflowing() {
    // Each of these would overflow a recursive parser or evaluator if accepted.
    for src in [
        format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)),
        "!".repeat(3000) + "true",
        "-".repeat(3000) + "1",
        "a".to_owned() + &".b".repeat(1500),
        "1".to_owned() + &" + 1".repeat(900),
        "x".to_owned() + &"[0]".repeat(1000),
        "true ? 1 : ".repeat(600) + "2",
    ] {
        let opts =
            Options { limits: Limits { max_source_len: 1 << 20, ..Limits::default() }, variables: None };
        let e = compile_with(&src, &opts).unwrap_err();
        assert!(e.message.contains("nested too deeply"), "{}: {e}", &src[..20]);
    }
    // Default source limit.
    let long = format!("'{}'", "a".repeat(5000));
    assert_eq!(compile_err(&long).message, "expression longer than 4096 bytes");
    // Node limit: 2000 list elements fit in 4 KiB but not in 1024 nodes.
    let many = format!("[{}]", vec!["1"; 2000].join(","));
    assert!(compile_err(&many).message.contains("too large"));
    // Long `||` and `&&` chains are balanced, so 200 alternatives are depth ~10, not 200.
    let alts: Vec<String> = (0..200).map(|i| format!("x == {i}")).collect();
    let p = compile(&alts.join(" || ")).unwrap();
    let binds: &[(&str, Value<'_>)] = &[("x", Value::Int(199))];
    let act = &Bindings(binds);
    assert_eq!(p.matches(act), Ok(true));
    let p = compile(&alts.join(" && ")).unwrap();
    assert_eq!(p.matches(act), Ok(false));
    // Custom, tighter limits.
    let opts = Options { limits: Limits { max_depth: 3, ..Limits::default() }, variables: None };
    assert!(compile_with("1 + 2", &opts).is_ok());
    assert!(compile_with("1 + 2 + 3 + 4", &opts).is_err());
}

#[test]
fn arithmetic() {
    for (src, want) in [
        ("1 + 2", "3"),
        ("1u + 2u", "3u"),
        ("1.5 + 2.0", "3.5"),
        ("5 - 7", "-2"),
        ("7u - 5u", "2u"),
        ("6 * 7", "42"),
        ("3u * 4u", "12u"),
        ("7 / 2", "3"),
        ("-7 / 2", "-3"),
        ("7 % 3", "1"),
        ("-7 % 3", "-1"),
        ("7u / 2u", "3u"),
        ("7u % 4u", "3u"),
        ("1.0 / 4.0", "0.25"),
        ("1.0 / 0.0", "inf"),
        ("-1.0 / 0.0", "-inf"),
        ("-(1.5)", "-1.5"),
        ("'ab' + 'cd'", "\"abcd\""),
        ("[1] + [2, 'x']", "[1, 2, \"x\"]"),
        ("[] + []", "[]"),
        ("9223372036854775807 - 1", "9223372036854775806"),
    ] {
        check(src, want);
    }
    for (src, kind) in [
        ("9223372036854775807 + 1", ErrorKind::Overflow),
        ("-9223372036854775807 - 2", ErrorKind::Overflow),
        ("4611686018427387904 * 2", ErrorKind::Overflow),
        ("-(-9223372036854775807 - 1)", ErrorKind::Overflow),
        ("(-9223372036854775807 - 1) / -1", ErrorKind::Overflow),
        ("(-9223372036854775807 - 1) % -1", ErrorKind::Overflow),
        ("0u - 1u", ErrorKind::Overflow),
        ("18446744073709551615u + 1u", ErrorKind::Overflow),
        ("9223372036854775808u * 2u", ErrorKind::Overflow),
        ("1 / 0", ErrorKind::DivisionByZero),
        ("1 % 0", ErrorKind::DivisionByZero),
        ("1u / 0u", ErrorKind::DivisionByZero),
        ("1u % 0u", ErrorKind::DivisionByZero),
        ("1 + 1u", ErrorKind::NoSuchOverload),
        ("1 + 1.0", ErrorKind::NoSuchOverload),
        ("1.5 % 1.0", ErrorKind::NoSuchOverload),
        ("'a' + 1", ErrorKind::NoSuchOverload),
        ("'a' - 'a'", ErrorKind::NoSuchOverload),
        ("[1] * 2", ErrorKind::NoSuchOverload),
        ("-(1u)", ErrorKind::NoSuchOverload),
        ("-'a'", ErrorKind::NoSuchOverload),
        ("!1", ErrorKind::NoSuchOverload),
        ("null + null", ErrorKind::NoSuchOverload),
        ("{'a': 1} + {'b': 2}", ErrorKind::NoSuchOverload),
    ] {
        fails(src, kind);
    }
}

#[test]
fn equality_and_ordering() {
    for (src, want) in [
        ("1 == 1", true),
        ("1 == 1u", true),
        ("1 == 1.0", true),
        ("1u == 1.0", true),
        ("-1 == 18446744073709551615u", false),
        ("9007199254740993 == 9007199254740992.0", false),
        ("1 == '1'", false),
        ("1 != '1'", true),
        ("null == null", true),
        ("null == 0", false),
        ("null != false", true),
        ("'a' == 'a'", true),
        ("true == true", true),
        ("[1, 2] == [1.0, 2u]", true),
        ("[1, 2] == [2, 1]", false),
        ("[1] == [1, 2]", false),
        ("[[1], ['a']] == [[1], ['a']]", true),
        ("{'a': 1, 'b': 2} == {'b': 2u, 'a': 1.0}", true),
        ("{'a': 1} == {'a': 2}", false),
        ("{'a': 1} == {'b': 1}", false),
        ("{1: 'x'} == {1u: 'x'}", true),
        ("[] == {}", false),
        ("0.0 / 0.0 == 0.0 / 0.0", false),
        ("0.0 / 0.0 != 0.0 / 0.0", true),
        ("[0.0 / 0.0] == [0.0 / 0.0]", false),
        ("1 < 2", true),
        ("2 <= 2", true),
        ("3 > 2u", true),
        ("-1 < 0u", true),
        ("1 < 1.5", true),
        ("2 > 1.5", true),
        ("1u < 1.5", true),
        ("18446744073709551615u > 1e19", true),
        ("18446744073709551615u < 1e19", false),
        ("18446744073709551615u < 1e20", true),
        ("9223372036854775807 < 9223372036854775808.0", true),
        ("-9223372036854775808 > -1e19", true),
        ("1.5 >= 1", true),
        ("'a' < 'b'", true),
        ("'abc' < 'abd'", true),
        ("'Z' < 'a'", true),
        ("'é' > 'z'", true),
        ("'' < 'a'", true),
        ("false < true", true),
        ("true <= true", true),
    ] {
        check(src, if want { "true" } else { "false" });
    }
    for src in ["1 < 'a'", "[1] < [2]", "null < null", "{'a': 1} > {}", "true < 1"] {
        fails(src, ErrorKind::NoSuchOverload);
    }
    for src in ["0.0 / 0.0 < 1", "0.0 / 0.0 >= 1", "1u > 0.0 / 0.0", "0.0 / 0.0 <= 0.0 / 0.0"] {
        fails(src, ErrorKind::NaN);
    }
}

#[test]
fn membership_and_indexing() {
    for (src, want) in [
        ("1 in [1, 2]", "true"),
        ("3 in [1, 2]", "false"),
        ("2.0 in [1, 2]", "true"),
        ("'a' in ['a']", "true"),
        ("'a' in [1, 'a']", "true"),
        ("[1] in [[1], [2]]", "true"),
        ("'a' in {'a': 1}", "true"),
        ("'b' in {'a': 1}", "false"),
        ("1 in {'a': 1}", "false"),
        ("1u in {1: 'x'}", "true"),
        ("1 in []", "false"),
        ("[10, 20, 30][1]", "20"),
        ("[10, 20, 30][2u]", "30"),
        ("[10, 20, 30][0.0]", "10"),
        ("{'a': 1}['a']", "1"),
        ("{1: 'x'}[1u]", "\"x\""),
        ("{1: 'x'}[1.0]", "\"x\""),
        ("{true: 'y'}[true]", "\"y\""),
        ("{'a': {'b': [5]}}.a.b[0]", "5"),
    ] {
        check(src, want);
    }
    for (src, kind) in [
        ("1 in 1", ErrorKind::NoSuchOverload),
        ("'a' in 'abc'", ErrorKind::NoSuchOverload),
        ("[1][1]", ErrorKind::IndexOutOfRange),
        ("[1][-1]", ErrorKind::IndexOutOfRange),
        ("[1]['a']", ErrorKind::NoSuchOverload),
        ("[1][0.5]", ErrorKind::NoSuchOverload),
        ("{'a': 1}['b']", ErrorKind::NoSuchKey),
        ("{'a': 1}.b", ErrorKind::NoSuchKey),
        ("{'a': 1}[1]", ErrorKind::NoSuchKey),
        ("'abc'[0]", ErrorKind::NoSuchOverload),
        ("'abc'.a", ErrorKind::NoSuchOverload),
        ("[1].a", ErrorKind::NoSuchOverload),
        ("{'a': 1, 'a': 2}", ErrorKind::DuplicateKey),
        ("{1: 1, 1u: 2}", ErrorKind::DuplicateKey),
        ("{1.5: 1}", ErrorKind::NoSuchOverload),
        ("{null: 1}", ErrorKind::NoSuchOverload),
        ("{[1]: 1}", ErrorKind::NoSuchOverload),
        ("x", ErrorKind::UnknownVariable),
    ] {
        fails(src, kind);
    }
}

#[test]
fn has_macro() {
    check("has({'a': 1}.a)", "true");
    check("has({'a': 1}.b)", "false");
    check("has({'a': {'b': null}}.a.b)", "true");
    // Only the last selection is tested; a missing intermediate is an error.
    fails("has({'a': 1}.b.c)", ErrorKind::NoSuchKey);
    fails("has('s'.a)", ErrorKind::NoSuchOverload);
    fails("has([1].a)", ErrorKind::NoSuchOverload);
}

#[test]
fn string_functions() {
    for (src, want) in [
        ("size('héllo')", "5"),
        ("'héllo'.size()", "5"),
        ("size('')", "0"),
        ("'😀'.size()", "1"),
        ("size([1, 2])", "2"),
        ("size({'a': 1})", "1"),
        ("'hello'.startsWith('he')", "true"),
        ("'hello'.startsWith('lo')", "false"),
        ("'hello'.endsWith('lo')", "true"),
        ("'hello'.contains('ell')", "true"),
        ("'hello'.contains('')", "true"),
        ("'hello'.contains('xyz')", "false"),
        ("'abc'.matches('b')", "true"),
        ("'abc'.matches('^b')", "false"),
        ("'abc'.matches('^a.c$')", "true"),
        ("matches('abc', 'c$')", "true"),
        ("'Hello, World!'.matches('^Hello, .*!$')", "true"),
        ("'é'.matches('^.$')", "true"),
        ("'a1'.matches(r'\\d')", "true"),
    ] {
        check(src, want);
    }
    for src in [
        "size(1)",
        "size(null)",
        "1.startsWith('a')",
        "'a'.startsWith(1)",
        "1.matches('a')",
        "'a'.contains(null)",
    ] {
        fails(src, ErrorKind::NoSuchOverload);
    }
}

#[test]
fn conversions() {
    for (src, want) in [
        ("int(1u)", "1"),
        ("int(1.9)", "1"),
        ("int(-1.9)", "-1"),
        ("int(-0.5)", "0"),
        ("int(-9223372036854774784.0)", "-9223372036854774784"),
        ("int('42')", "42"),
        ("int('-42')", "-42"),
        ("int(7)", "7"),
        ("uint(1)", "1u"),
        ("uint(1.9)", "1u"),
        ("uint('42')", "42u"),
        ("double(1)", "1.0"),
        ("double(1u)", "1.0"),
        ("double('1.5')", "1.5"),
        ("double('1e3')", "1000.0"),
        ("string(1)", "\"1\""),
        ("string(-1)", "\"-1\""),
        ("string(1u)", "\"1\""),
        ("string(1.5)", "\"1.5\""),
        ("string(true)", "\"true\""),
        ("string('s')", "\"s\""),
        ("string(1e6)", "\"1e+06\""),
        ("string(123456.0)", "\"123456\""),
        ("dyn(1) == 1", "true"),
        ("dyn([1])[0]", "1"),
    ] {
        check(src, want);
    }
    for (src, kind) in [
        ("int(9223372036854775808u)", ErrorKind::Overflow),
        ("int(1e19)", ErrorKind::Overflow),
        ("int(-1e19)", ErrorKind::Overflow),
        ("int(0.0 / 0.0)", ErrorKind::Overflow),
        ("int(1.0 / 0.0)", ErrorKind::Overflow),
        ("uint(-1)", ErrorKind::Overflow),
        ("uint(-1.5)", ErrorKind::Overflow),
        ("uint(-0.5)", ErrorKind::Overflow),
        ("int(-9223372036854775808.0)", ErrorKind::Overflow),
        ("int(9223372036854775807.0)", ErrorKind::Overflow),
        ("uint(1e20)", ErrorKind::Overflow),
        ("int('1.5')", ErrorKind::InvalidConversion),
        ("int('x')", ErrorKind::InvalidConversion),
        ("int('')", ErrorKind::InvalidConversion),
        ("uint('-1')", ErrorKind::InvalidConversion),
        ("double('x')", ErrorKind::InvalidConversion),
        ("int(true)", ErrorKind::NoSuchOverload),
        ("int(null)", ErrorKind::NoSuchOverload),
        ("double([1])", ErrorKind::NoSuchOverload),
        ("string(null)", ErrorKind::NoSuchOverload),
        ("string([1])", ErrorKind::NoSuchOverload),
    ] {
        fails(src, kind);
    }
}

#[test]
fn double_formatting_follows_go() {
    for (f, want) in [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (1.5, "1.5"),
        (-2.25, "-2.25"),
        (100000.0, "100000"),
        (999999.0, "999999"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (1e20, "1e+20"),
        (1e100, "1e+100"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e-7, "1.5e-07"),
        (0.1, "0.1"),
        (123.456, "123.456"),
        (f64::MAX, "1.7976931348623157e+308"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
    ] {
        assert_eq!(format_double(f), want, "{f}");
    }
}

/// The four kinds of operand for the logical truth tables.
const OPERANDS: [(&str, &str); 4] = [("true", "T"), ("false", "F"), ("(1 / 0 == 1)", "E"), ("'s'", "N")];

#[test]
fn logical_operators_absorb_errors() {
    // cel-spec: `&&` is false if either side is false, else an error if either side is an
    // error (or not a bool), else true; `||` mirrors it. Symmetric in both orders.
    for (l, lk) in OPERANDS {
        for (r, rk) in OPERANDS {
            let and = match (lk, rk) {
                ("F", _) | (_, "F") => Ok("false"),
                ("T", "T") => Ok("true"),
                _ => Err(()),
            };
            let or = match (lk, rk) {
                ("T", _) | (_, "T") => Ok("true"),
                ("F", "F") => Ok("false"),
                _ => Err(()),
            };
            for (op, want) in [("&&", and), ("||", or)] {
                let src = format!("{l} {op} {r}");
                let got = run(&src);
                match want {
                    Ok(v) => assert_eq!(got, Ok(v.to_owned()), "{src}"),
                    Err(()) => assert!(got.is_err(), "{src}: {got:?}"),
                }
            }
        }
    }
    // The error reported is the first one met, with its position.
    let p = compile("x.a && y.b").unwrap();
    let binds: &[(&str, Value<'_>)] = &[];
    let act = &Bindings(binds);
    assert_eq!(p.eval(act).unwrap_err(), EvalError { kind: ErrorKind::UnknownVariable, pos: 0 });
    let p = compile("true && 'a'").unwrap();
    assert_eq!(p.eval(act).unwrap_err(), EvalError { kind: ErrorKind::NoSuchOverload, pos: 8 });
    // `!` and `? :` do not absorb.
    fails("!(1 / 0 == 1)", ErrorKind::DivisionByZero);
    fails("(1 / 0 == 1) ? 1 : 2", ErrorKind::DivisionByZero);
    fails("1 ? 1 : 2", ErrorKind::NoSuchOverload);
    check("true ? 1 : 1 / 0", "1");
    check("false ? 1 / 0 : 2", "2");
}

#[test]
fn comprehensions() {
    for (src, want) in [
        ("[1, 2, 3].all(x, x > 0)", "true"),
        ("[1, 2, 3].all(x, x > 1)", "false"),
        ("[].all(x, false)", "true"),
        ("[1, 2, 3].exists(x, x == 2)", "true"),
        ("[1, 2, 3].exists(x, x == 5)", "false"),
        ("[].exists(x, true)", "false"),
        ("[1, 2, 3].exists_one(x, x > 2)", "true"),
        ("[1, 2, 3].exists_one(x, x > 1)", "false"),
        ("[1, 2, 3].map(x, x * 2)", "[2, 4, 6]"),
        ("[1, 2, 3].map(x, x > 1, x * 10)", "[20, 30]"),
        ("[1, 2, 3].filter(x, x % 2 == 1)", "[1, 3]"),
        ("{'a': 1, 'b': 2}.all(k, k.size() == 1)", "true"),
        ("{'a': 1, 'b': 2}.map(k, k + '!')", "[\"a!\", \"b!\"]"),
        ("{'a': 1, 'b': 2}.exists(k, {'a': 1, 'b': 2}[k] == 2)", "true"),
        // Nested comprehensions and shadowing.
        ("[1, 2].all(x, [3, 4].all(y, x < y))", "true"),
        ("[[1, 2], [3]].map(x, x.map(y, y + 1))", "[[2, 3], [4]]"),
        ("[1, 2].map(x, [10].map(x, x + 1))", "[[11], [11]]"),
        ("[1, 2].exists(x, x == 2) && [3].all(x, x == 3)", "true"),
        ("[1, 2].map(x, x).all(y, y > 0)", "true"),
        // Errors are absorbed by a deciding element, in either order.
        ("[0, 1].exists(x, 1 / x == 1)", "true"),
        ("[1, 0].exists(x, 1 / x == 1)", "true"),
        ("[0, 1].all(x, 1 / x > 5)", "false"),
        ("[1, 0].all(x, 1 / x > 5)", "false"),
    ] {
        check(src, want);
    }
    for (src, kind) in [
        ("[0, 1].all(x, 1 / x == 1)", ErrorKind::DivisionByZero),
        ("[0, 1].exists(x, 1 / x == 5)", ErrorKind::DivisionByZero),
        ("[1, 2].all(x, 'a')", ErrorKind::NoSuchOverload),
        ("[0, 1].exists_one(x, 1 / x == 1)", ErrorKind::DivisionByZero),
        ("[0].map(x, 1 / x)", ErrorKind::DivisionByZero),
        ("[0].filter(x, 1)", ErrorKind::NoSuchOverload),
        ("[0].map(x, 'a', x)", ErrorKind::NoSuchOverload),
        ("1.all(x, true)", ErrorKind::NoSuchOverload),
        ("'abc'.exists(x, true)", ErrorKind::NoSuchOverload),
    ] {
        fails(src, kind);
    }
    // An error inside a comprehension absorbed outside it leaves the scope consistent.
    check("([0].all(x, 1 / x == 1) || true) && [5].all(y, y == 5)", "true");
    check("[7].all(a, ([0].exists(b, 1 / b == 1) || true) && a == 7)", "true");
}

#[test]
fn cost_bound_stops_huge_and_nested_comprehensions() {
    // 200 000 elements: one iteration each already exceeds 100 000 steps.
    let big = format!("[{}]", vec!["1"; 200_000].join(","));
    let start = std::time::Instant::now();
    let r = on_args(&big, "args.all(x, x == 1)");
    assert_eq!(r, Err(ErrorKind::CostExceeded));
    assert_eq!(on_args(&big, "args.exists(x, x == 2)"), Err(ErrorKind::CostExceeded));
    assert_eq!(on_args(&big, "2 in args"), Err(ErrorKind::CostExceeded));
    assert_eq!(on_args(&big, "args == args"), Err(ErrorKind::CostExceeded));
    assert_eq!(on_args(&big, "args.map(x, x).size() > 0"), Err(ErrorKind::CostExceeded));
    assert_eq!(on_args(&big, "size(args + args) > 0"), Err(ErrorKind::CostExceeded));
    // Cheap operations on the same data stay cheap: size is O(1), an index skips.
    assert_eq!(on_args(&big, "size(args)"), Ok("200000".to_owned()));
    assert_eq!(on_args(&big, "args[199999]"), Ok("1".to_owned()));
    // 1000 x 1000 nested iterations.
    let k = format!("[{}]", vec!["0"; 1000].join(","));
    assert_eq!(on_args(&k, "args.all(x, args.all(y, x == y))"), Err(ErrorKind::CostExceeded));
    // Running out of budget is never absorbed by `||`, `&&` or a comprehension.
    assert_eq!(on_args(&k, "args.all(x, args.all(y, x == y)) || true"), Err(ErrorKind::CostExceeded));
    assert_eq!(on_args(&k, "false && args.all(x, args.all(y, x == y))"), Ok("false".to_owned()));
    assert_eq!(on_args(&k, "args.exists(x, args.all(y, x == y) || true)"), Ok("true".to_owned()));
    assert_eq!(on_args(&k, "args.exists(x, args.exists(y, x != y))"), Err(ErrorKind::CostExceeded));
    // Budgets are per call, and measured.
    let p = compile("[1, 2, 3].all(x, x > 0)").unwrap();
    let binds: &[(&str, Value<'_>)] = &[];
    let act = &Bindings(binds);
    let (r, cost) = p.eval_metered(act);
    assert_eq!(r.unwrap().as_bool(), Some(true));
    assert!(cost > 3 && cost < 30, "{cost}");
    let opts = Options { limits: Limits { max_cost: cost - 1, ..Limits::default() }, variables: None };
    let tight = compile_with("[1, 2, 3].all(x, x > 0)", &opts).unwrap();
    assert_eq!(tight.eval(act).unwrap_err().kind, ErrorKind::CostExceeded);
    // A generous bound on wall time, to catch a hang rather than to benchmark.
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn borrowed_tape_evaluation() {
    let json = r#"{"x":{"y":["z","w"]},"n":3,"big":18446744073709551615,"neg":-4,"f":2.5,
        "s":"héllo","t":true,"nil":null,"items":[{"name":"a","qty":2},{"name":"b","qty":5}],
        "empty":{},"dup":1,"dup":2,"deep":[[[[1]]]]}"#;
    for (src, want) in [
        ("args.x.y[0] == \"z\"", "true"),
        ("args.x.y[1]", "\"w\""),
        ("args.x.y", "[\"z\", \"w\"]"),
        ("args.n == 3", "true"),
        ("args.n == 3.0", "true"),
        ("args.n + 1", "4"),
        ("args.n % 2 == 1", "true"),
        ("args.big", "18446744073709551615u"),
        ("args.neg < 0", "true"),
        ("args.f * 2.0", "5.0"),
        ("args.s.size()", "5"),
        ("args.s.startsWith('hé')", "true"),
        ("args.t && true", "true"),
        ("args.nil == null", "true"),
        ("has(args.x)", "true"),
        ("has(args.x.y)", "true"),
        ("has(args.x.q)", "false"),
        ("has(args.nil)", "true"),
        ("'x' in args", "true"),
        ("'q' in args", "false"),
        ("'z' in args.x.y", "true"),
        ("size(args.items)", "2"),
        ("size(args.empty)", "0"),
        ("args.items.all(i, i.qty > 1)", "true"),
        ("args.items.exists(i, i.name == 'b' && i.qty == 5)", "true"),
        ("args.items.map(i, i.name)", "[\"a\", \"b\"]"),
        ("args.items.filter(i, i.qty > 3).map(i, i.name)", "[\"b\"]"),
        ("args.x.all(k, k == 'x' || k == 'y')", "true"),
        ("args.deep[0][0][0][0]", "1"),
        ("args.deep == [[[[1]]]]", "true"),
        ("args.items[1] == {'name': 'b', 'qty': 5}", "true"),
        ("args.items[1] == {'name': 'b', 'qty': 6}", "false"),
        ("args['n']", "3"),
        ("'dup' in args", "true"),
        ("has(args.dup)", "true"),
    ] {
        assert_eq!(on_args(json, src), Ok(want.to_owned()), "{src}");
    }
    for (src, kind) in [
        ("args.q", ErrorKind::NoSuchKey),
        ("args.x.y[2]", ErrorKind::IndexOutOfRange),
        ("args.n.y", ErrorKind::NoSuchOverload),
        ("args.s + 1", ErrorKind::NoSuchOverload),
        ("args.big + 1", ErrorKind::NoSuchOverload),
        // A repeated key is never resolved to one of its values.
        ("args.dup", ErrorKind::DuplicateKey),
        ("args['dup'] == 1", ErrorKind::DuplicateKey),
    ] {
        assert_eq!(on_args(json, src), Err(kind), "{src}");
    }
    // Top-level scalars and arrays.
    assert_eq!(on_args("[1,2]", "args[1]"), Ok("2".to_owned()));
    assert_eq!(on_args("\"s\"", "args == 's'"), Ok("true".to_owned()));
    // Equality on data nested deeper than the comparison follows is an error, not a crash.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(on_args(&deep, "args == args"), Err(ErrorKind::TooDeep));
    assert_eq!(on_args(&deep, "size(args)"), Ok("1".to_owned()));
    assert!(on_args(&deep, "args[0][0][0][0][0] == []").is_ok());
}

fn claims() -> serde_json::Map<String, serde_json::Value> {
    match serde_json::json!({
        "sub": "alice", "iss": "https://idp", "groups": ["eng", "ops"], "level": 3,
        "org": {"id": "o1", "tier": "gold"}, "email_verified": true, "ratio": 0.5
    }) {
        serde_json::Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn request_activation() {
    let mut claims = claims();
    claims.insert("scope".into(), "write read".into());
    let p = crate::auth::Principal::with_claims(crate::auth::PrincipalKind::Jwt, "alice", &claims.into());
    let headers: &[(&str, &[u8])] = &[
        ("Content-Type", b"application/json"),
        ("X-Team", b"blue"),
        ("x-team", b"red"),
        ("X-Bin", b"a\xffb"),
    ];
    let headers = HeaderPairs(headers);
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"gh__search","arguments":{"q":"rust","limit":10},"_meta":{"progressToken":7}}}"#;
    Decoder::default()
        .with_tape(body, |tape| {
            let env = crate::mcp::envelope::decode(tape).unwrap();
            let act = RequestActivation {
                args: env.arguments,
                request: Request {
                    method: "POST",
                    host: b"gw.example",
                    path: b"/mcp",
                    headers: Some(&headers),
                    auth: Auth { jwt: Some(Jwt { principal: &p }), ..Auth::default() },
                    mcp: Mcp {
                        method: Some(env.method),
                        backend: Some("gh"),
                        tool: Some("search"),
                        params: crate::policy::cel::Params { sent: env.params, arguments: None },
                    },
                },
            };
            let opts = Options::gateway();
            for (src, want) in [
                ("args.q == 'rust' && args.limit <= 10", Ok(true)),
                ("request.method == 'POST' && request.host == 'gw.example'", Ok(true)),
                ("request.path.startsWith('/mcp')", Ok(true)),
                ("request.headers['content-type'] == 'application/json'", Ok(true)),
                ("request.headers['x-team'] == 'blue'", Ok(true)),
                ("request.headers['X-Team'] == 'blue'", Ok(true)),
                ("'x-team' in request.headers", Ok(true)),
                ("size(request.headers) == 3", Ok(true)),
                ("request.headers.all(h, h == h.lowerAscii())", Err(())),
                ("request.headers.exists(h, h == 'content-type')", Ok(true)),
                ("request.headers['x-bin'] == 'a\\ufffdb'", Ok(true)),
                ("has(request.headers.accept)", Ok(false)),
                ("request.auth.jwt.claims.sub == 'alice'", Ok(true)),
                ("request.auth.jwt.claims.level >= 3", Ok(true)),
                ("request.auth.jwt.claims.ratio == 0.5", Ok(true)),
                ("request.auth.jwt.claims.org.tier in ['gold', 'platinum']", Ok(true)),
                ("'ops' in request.auth.jwt.claims.groups", Ok(true)),
                ("request.auth.jwt.claims.groups.exists(g, g == 'eng')", Ok(true)),
                ("request.auth.jwt.claims.email_verified", Ok(true)),
                ("has(request.auth.jwt.claims.missing)", Ok(false)),
                ("request.auth.jwt.claims.missing == 1", Err(())),
                ("'write' in request.auth.jwt.scopes", Ok(true)),
                ("request.auth.jwt.scopes.all(s, s in ['read', 'write'])", Ok(true)),
                ("size(request.auth.jwt.scopes) == 2", Ok(true)),
                ("request.mcp.method == 'tools/call'", Ok(true)),
                ("request.mcp.backend == 'gh' && request.mcp.tool == 'search'", Ok(true)),
                ("request.mcp.params.arguments.q == 'rust'", Ok(true)),
                ("request.mcp.params._meta.progressToken == 7", Ok(true)),
                ("request.mcp.params.name.endsWith('search')", Ok(true)),
                ("has(request.mcp.tool) && has(request.auth.jwt)", Ok(true)),
                ("size(request) == 6 && size(request.mcp) == 4", Ok(true)),
                ("request.nope == 1", Err(())),
            ] {
                // `lowerAscii` is not in the subset: that row checks the compile error.
                let p = match compile_with(src, &opts) {
                    Ok(p) => p,
                    Err(e) => {
                        assert!(want.is_err() && e.message.contains("unknown function"), "{src}: {e}");
                        continue;
                    }
                };
                assert_eq!(p.matches(&act).map_err(|_| ()), want, "{src}");
            }
            // Absent parts: no JWT, no tool, no arguments.
            let bare = RequestActivation {
                args: None,
                request: Request {
                    method: "GET",
                    host: b"h",
                    path: b"/mcp",
                    headers: None,
                    auth: Auth::default(),
                    mcp: Mcp::default(),
                },
            };
            for (src, want) in [
                ("has(request.auth.jwt)", Ok(true)),
                ("has(request.mcp.tool)", Ok(true)),
                ("size(request.headers) == 0", Ok(true)),
                ("args.q == 'x'", Err(ErrorKind::UnknownVariable)),
                ("request.auth.jwt.claims.sub == 'a'", Err(ErrorKind::NoSuchKey)),
                ("request.mcp.tool == 'a' || true", Ok(true)),
            ] {
                let p = compile_with(src, &opts).unwrap();
                let want = want.map(|_| !src.starts_with("has("));
                assert_eq!(p.matches(&bare).map_err(|e| e.kind), want, "{src}");
            }
        })
        .unwrap();
}

#[test]
fn matches_requires_a_bool() {
    let p = compile("1 + 1").unwrap();
    let binds: &[(&str, Value<'_>)] = &[];
    let act = &Bindings(binds);
    assert_eq!(p.matches(act), Err(EvalError { kind: ErrorKind::NotBool, pos: 2 }));
    assert_eq!(compile("1 == 1").unwrap().matches(act), Ok(true));
    assert_eq!(compile("x").unwrap().eval(act).unwrap_err().to_string(), "at 0: unbound variable");
}

#[test]
fn serde_and_list_views() {
    let v = serde_json::json!({"a": [1, 2.5, "x", null, {"b": true}], "u": 18446744073709551615u64});
    let p = crate::auth::Principal::with_claims(
        crate::auth::PrincipalKind::Jwt,
        "a",
        &serde_json::json!({"scp": ["s1"]}),
    );
    let binds: &[(&str, Value<'_>)] =
        &[("j", Value::from_serde(&v)), ("s", Value::List(List::scopes(p.scopes())))];
    let act = &Bindings(binds);
    for (src, want) in [
        ("j.a[0] == 1 && j.a[1] == 2.5 && j.a[2] == 'x' && j.a[3] == null", "true"),
        ("j.a[4].b", "true"),
        ("j.u", "18446744073709551615u"),
        ("size(j.a)", "5"),
        ("j.a.exists(e, e == 'x')", "true"),
        ("s == ['s1']", "true"),
        ("s[0].size()", "2"),
    ] {
        let p = compile(src).unwrap();
        assert_eq!(format!("{:?}", p.eval(act).unwrap()), want, "{src}");
    }
}
