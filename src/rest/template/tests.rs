//! Table tests: (template, expected output or error) over fixed arguments, config and data.
//! Expected outputs were worked out from Go `text/template`, sprig and Higress's
//! gjson_template semantics (see the decisions on `Template`).

use super::*;
use crate::mcp::json::Decoder;

const ARGS: &str = r#"{"city":"Paris","n":3,"f":1.5,"t":true,"list":["a","b","c"],"obj":{"b":2,"a":1},
"empty":"","zero":0,"arr":[],"nested":{"x":{"y":"deep"}},"items":[{"name":"x","v":1},{"name":"y","v":2}],
"nul":null,"html":"<a&b>","q":"../admin?x=1","amp":"a&b=c"}"#;

const CONFIG: &str = r#"{"apiKey":"k-123","tags":["x","y"],"opts":{"z":1,"a":2}}"#;

const DATA: &str = r#"{"current":{"temp_c":21.5,"cond":"sunny"},"location":{"name":"Paris"},
"list":[{"n":1},{"n":2}],"args":"shadowed"}"#;

/// Renders `src` over `args`/`config`/`data` (data `None` when empty). `Err` carries the
/// compile or render error. Checks that output is appended and that a failed render leaves the
/// buffer as it was.
fn render_with(src: &str, args: &str, config: &str, data: &str, escape: Escape) -> Result<String, String> {
    let t = Template::compile(src)?;
    let config: serde_json::Value = serde_json::from_str(config).unwrap();
    let data: Option<serde_json::Value> = (!data.is_empty()).then(|| serde_json::from_str(data).unwrap());
    let mut out = b">".to_vec();
    let mut d = Decoder::default();
    let res = d
        .with_tape(args.as_bytes(), |tape| {
            t.render_escaped(
                &mut out,
                &Context {
                    args: Some(tape),
                    config: Some(&config),
                    data: data.as_ref(),
                    ..Context::default()
                },
                escape,
            )
        })
        .unwrap();
    match res {
        Ok(()) => Ok(String::from_utf8(out[1..].to_vec()).unwrap()),
        Err(e) => {
            assert_eq!(out, b">", "{src}: a failed render must leave the buffer as it was");
            Err(e.to_string())
        }
    }
}

fn render(src: &str) -> Result<String, String> {
    render_with(src, ARGS, CONFIG, DATA, Escape::None)
}

/// `=output` or `!error substring`.
fn check(rows: &[(&str, &str)], run: impl Fn(&str) -> Result<String, String>) -> usize {
    let mut failures = Vec::new();
    for (src, want) in rows {
        let got = run(src);
        let ok = match (want.split_at(1), &got) {
            (("=", w), Ok(g)) => g == w,
            (("!", w), Err(e)) => e.contains(w),
            _ => false,
        };
        if !ok {
            failures.push(format!("{src:?}\n    want {want:?}\n    got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    rows.len()
}

#[test]
fn field_paths_and_output() {
    check(
        &[
            ("{{.args.city}}", "=Paris"),
            ("{{.config.apiKey}}", "=k-123"),
            ("{{.current.temp_c}} C in {{.location.name}}", "=21.5 C in Paris"),
            ("[{{.args.missing}}]", "=[]"),
            ("[{{.args.nul}}]", "=[]"),
            ("{{.args.n}} {{.args.f}} {{.args.t}}", "=3 1.5 true"),
            ("{{.args.obj}}", r#"={"b":2,"a":1}"#),
            ("{{.args.list}}", r#"=["a","b","c"]"#),
            ("{{.args.nested.x.y}}", "=deep"),
            ("{{.args.list.1}}", "=b"),
            ("{{.args.items.1.name}}", "=y"),
            ("[{{.args.city.x}}]", "=[]"),
            ("[{{.args.list.9}}]", "=[]"),
            ("{{$.args.city}}", "=Paris"),
            ("{{.config.tags.0}}", "=x"),
            ("{{.list.1.n}}", "=2"),
            ("{{.config.opts}}", r#"={"z":1,"a":2}"#),
            ("{{(.args.nested).x.y}}", "=deep"),
            ("{{(len .args.list)}}", "=3"),
            ("plain text", "=plain text"),
            ("", "="),
        ],
        render,
    );
}

#[test]
fn higress_examples() {
    check(
        &[
            ("{{.args.city}}", "=Paris"),
            ("{{.config.apiKey}}", "=k-123"),
            ("{{.current.temp_c}} C in {{.location.name}}", "=21.5 C in Paris"),
            ("{{- range $i, $f := .list}}{{$i}}:{{$f.n}} {{end}}", "=0:1 1:2 "),
            (
                "# {{.location.name}}\n{{- range $i, $f := .list }}\n- {{ add $i 1 }}. n={{ $f.n }}\n{{- end }}",
                "=# Paris\n- 1. n=1\n- 2. n=2",
            ),
        ],
        render,
    );
    // The root `.` is the data.
    assert_eq!(render_with("{{.}}", "{}", "{}", r#"{"a":1}"#, Escape::None).unwrap(), r#"{"a":1}"#);
    assert_eq!(render_with("[{{.}}]", "{}", "{}", "", Escape::None).unwrap(), "[]");
}

#[test]
fn trim_markers_and_comments() {
    check(
        &[
            ("a  {{- .args.n -}}  b", "=a3b"),
            (r#"a {{- " x " -}} b"#, "=a x b"),
            ("x {{-3}} y", "=x -3 y"),
            ("line1\n  {{- /* comment */ -}}\n  line2", "=line1line2"),
            ("a{{/* hi */}}b", "=ab"),
            ("a {{/* multi\nline */}} b", "=a  b"),
            ("{{ .args.city -}}\n\n", "=Paris"),
            ("\t\n{{- .args.city}}", "=Paris"),
        ],
        render,
    );
}

#[test]
fn conditionals() {
    check(
        &[
            ("{{if .args.t}}yes{{else}}no{{end}}", "=yes"),
            ("{{if .args.empty}}yes{{else}}no{{end}}", "=no"),
            ("{{if .args.zero}}y{{else if .args.n}}n={{.args.n}}{{else}}z{{end}}", "=n=3"),
            ("{{if .args.missing}}y{{else if .args.empty}}e{{else}}z{{end}}", "=z"),
            ("{{if .args.list}}L{{end}}{{if .args.nul}}N{{end}}{{if .config.opts}}O{{end}}{{if .args.arr}}A{{end}}", "=LO"),
            ("{{if and .args.t .args.n}}{{and .args.t .args.n}}{{end}}", "=3"),
            (r#"{{or .args.empty .args.zero "fallback"}}"#, "=fallback"),
            ("{{or .args.empty .args.zero}}", "=0"),
            ("[{{and .args.n .args.empty .args.t}}]", "=[]"),
            ("{{not .args.t}} {{not .args.missing}}", "=false true"),
            ("{{if not .args.missing}}ok{{end}}", "=ok"),
            ("{{if $c := .args.city}}{{$c}}{{end}}", "=Paris"),
            ("{{if 0.0}}a{{else}}b{{end}}{{if -1}}c{{end}}", "=bc"),
            // `and` stops at the first false argument: `index` of a missing list never runs.
            ("{{if and .args.missing (index .args.missing 0)}}x{{else}}safe{{end}}", "=safe"),
            ("{{with .args.nested.x}}{{.y}}{{end}}", "=deep"),
            ("{{with .args.missing}}x{{else}}none{{end}}", "=none"),
            ("{{with .args.missing}}a{{else with .args.city}}{{.}}{{end}}", "=Paris"),
            ("{{with $x := .args.city}}{{$x}}-{{.}}{{end}}", "=Paris-Paris"),
            ("{{with .config}}{{.apiKey}} {{$.args.city}}{{end}}", "=k-123 Paris"),
            ("{{with $}}{{.args.city}}/{{.location.name}}{{end}}", "=Paris/Paris"),
        ],
        render,
    );
}

#[test]
fn ranges_and_variables() {
    check(
        &[
            ("{{range .args.list}}[{{.}}]{{end}}", "=[a][b][c]"),
            ("{{range $i, $e := .args.list}}{{$i}}={{$e}},{{end}}", "=0=a,1=b,2=c,"),
            ("{{range $e := .args.list}}{{$e}}{{end}}", "=abc"),
            ("{{range $k, $v := .args.obj}}{{$k}}:{{$v}} {{end}}", "=a:1 b:2 "),
            ("{{range $k, $v := .config.opts}}{{$k}}={{$v}};{{end}}", "=a=2;z=1;"),
            ("{{range .args.missing}}x{{else}}empty{{end}}", "=empty"),
            ("{{range .args.arr}}x{{else}}E{{end}}", "=E"),
            ("{{range .args.items}}{{.name}}={{.v}};{{end}}", "=x=1;y=2;"),
            ("{{range $i, $e := .args.list}}{{if eq $i 1}}{{continue}}{{end}}{{$e}}{{end}}", "=ac"),
            (r#"{{range .args.list}}{{if eq . "b"}}{{break}}{{end}}{{.}}{{end}}"#, "=a"),
            ("{{range .args.list}}{{break}}{{else}}E{{end}}", "="),
            ("{{range 3}}{{.}}{{end}}", "=012"),
            ("{{range $i := 2}}{{$i}}{{end}}", "=01"),
            ("{{range 0}}x{{else}}none{{end}}", "=none"),
            (
                "{{range $a := .args.list}}{{range $.config.tags}}{{$a}}{{.}} {{end}}{{end}}",
                "=ax ay bx by cx cy ",
            ),
            ("{{range .args.list}}{{$.args.city}}{{end}}", "=ParisParisParis"),
            ("{{range .list}}{{.n}}{{end}}", "=12"),
            (r#"{{range splitList "/" "x/y"}}<{{.}}>{{end}}"#, "=<x><y>"),
            ("{{range .args.city}}x{{end}}", "!range can't iterate over string"),
            ("{{range $i, $e := 3}}{{end}}", "!more than one variable"),
            ("{{$n := 0}}{{range .args.list}}{{$n = add $n 1}}{{end}}{{$n}}", "=3"),
            ("{{$x := .args.city}}{{$x}}", "=Paris"),
            ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "=2"),
            ("{{$x := 1}}{{$x := 2}}{{$x}}", "=2"),
            ("{{$x := 1}}{{range .args.list}}{{$x := .}}{{end}}{{$x}}", "=1"),
            ("{{$o := .args.nested}}{{$o.x.y}}", "=deep"),
            ("{{$l := list 1 2}}{{$l.1}}", "=2"),
            ("{{$x}}", "!undefined variable \"$x\" at 1:3"),
            ("{{if true}}{{$y := 1}}{{end}}{{$y}}", "!undefined variable \"$y\""),
            ("{{$ := 1}}", "!cannot assign to $"),
        ],
        render,
    );
}

#[test]
fn literals() {
    check(
        &[
            (r#"{{"a\tb\u00e9\x41\101"}}"#, "=a\tbéAA"),
            ("{{`raw\\n`}}", "=raw\\n"),
            ("{{'a'}} {{'\\n'}}", "=97 10"),
            (
                "{{0x1F}} {{1e3}} {{-2}} {{1_000}} {{0o17}} {{0b101}} {{1.25}} {{.5}}",
                "=31 1000 -2 1000 15 5 1.25 0.5",
            ),
            ("{{true}} {{false}}", "=true false"),
            (r#"{{default "d" nil}}"#, "=d"),
            ("{{nil}}", "!nil is not a command"),
            (r#"{{"\xff"}}"#, "!not valid UTF-8"),
            ("{{1i}}", "!complex"),
        ],
        render,
    );
}

#[test]
fn functions() {
    check(
        &[
            (r#"{{.args.missing | default "n"}}"#, "=n"),
            (r#"{{.args.city | default "n"}}"#, "=Paris"),
            (r#"{{default "d" .args.zero}}"#, "=d"),
            ("{{empty .args.arr}} {{empty .args.list}}", "=true false"),
            ("{{coalesce .args.missing .args.empty .args.city}}", "=Paris"),
            (r#"{{ternary "y" "n" .args.t}}"#, "=y"),
            ("{{toJson .args.city}}", r#"="Paris""#),
            ("{{.args.obj | toJson}}", r#"={"b":2,"a":1}"#),
            ("{{toJson .args.html}}", r#"="\u003ca\u0026b\u003e""#),
            ("{{toRawJson .args.html}}", r#"="<a&b>""#),
            (
                "{{toPrettyJson .args.items}}",
                "=[\n  {\n    \"name\": \"x\",\n    \"v\": 1\n  },\n  {\n    \"name\": \"y\",\n    \"v\": 2\n  }\n]",
            ),
            ("{{toPrettyJson .config.opts}} {{toPrettyJson .args.arr}}", "={\n  \"z\": 1,\n  \"a\": 2\n} []"),
            ("{{toJson .args.missing}} {{toJson .args.nul}} {{toJson .args.f}}", "=null null 1.5"),
            ("{{toJson .config.opts}}", r#"={"z":1,"a":2}"#),
            (r#"{{mustToJson (list 1 "a" .args.t)}}"#, r#"=[1,"a",true]"#),
            ("{{.args.q | urlquery}}", "=..%2Fadmin%3Fx%3D1"),
            (r#"{{urlquery "a b&c"}}"#, "=a+b%26c"),
            (r#"{{upper .args.city}} {{lower "ÀB"}}"#, "=PARIS àb"),
            (r#"{{upper "straße"}}"#, "=STRAßE"),
            (r#"{{title "hello wide-world"}} {{untitle "Hello World"}}"#, "=Hello Wide-World hello world"),
            (
                r#"{{trim "  x y  "}}|{{trimAll "$" "$$5$"}}|{{trimPrefix "ab" "abc"}}|{{trimSuffix "bc" "abc"}}"#,
                "=x y|5|c|a",
            ),
            (r#"{{replace "a" "o" "banana"}}"#, "=bonono"),
            (r#"{{"banana" | replace "an" "AN"}}"#, "=bANANa"),
            (r#"{{replace "" "-" "ab"}}"#, "=-a-b-"),
            (
                r#"{{contains "ar" .args.city}} {{hasPrefix "Pa" .args.city}} {{hasSuffix "x" .args.city}}"#,
                "=true true false",
            ),
            (r#"{{join "," .args.list}} {{join "-" .config.tags}} [{{join "," .args.missing}}]"#, "=a,b,c x-y []"),
            (r#"{{join "+" (list 1 nil "b")}}"#, "=1+b"),
            (r#"{{splitList "," "a,b,,c" | len}} {{splitList "" "héé" | toJson}}"#, r#"=4 ["h","é","é"]"#),
            (r#"{{b64enc "hello"}} {{b64dec "aGVsbG8="}}"#, "=aGVsbG8= hello"),
            (r#"{{b64dec "%%%"}}"#, "!b64dec: illegal base64 data at 1:3"),
            (r#"{{b64dec "/w=="}}"#, "!not UTF-8"),
            ("{{quote .args.city 3}} {{squote .args.city}} [{{quote .args.missing}}]", r#"="Paris" "3" 'Paris' []"#),
            (r#"{{quote "a\"b\n"}}"#, r#"="a\"b\n""#),
            ("{{len .args.list}} {{len .args.city}} {{len .args.obj}} {{len .args.missing}}", "=3 5 2 0"),
            ("{{len .args.n}}", "!len of number"),
            ("{{index .args.list 1}}", "=b"),
            ("{{index .args.list 5}}", "!index: index out of range: 5 at 1:3"),
            (r#"{{index .args.obj "a"}} {{index .args.items 1 "name"}} [{{index .args.obj "zz"}}]"#, "=1 y []"),
            (r#"{{index "abc" 1}}"#, "=98"),
            ("{{index .args.missing 0}}", "!index of nil"),
            ("{{index .args.list .args.city}}", "!cannot index an array with string"),
            (
                r#"{{eq .args.city "Paris"}} {{eq .args.n 3}} {{eq .args.n 3.0}} {{eq .args.n 1 2 3}} {{eq .args.t true}}"#,
                "=true true true true true",
            ),
            (r#"{{ne .args.city "Paris"}} {{eq .args.missing "x"}} {{eq .args.missing nil}}"#, "=false false true"),
            (r#"{{eq .args.n "3"}} {{eq "x" 3}}"#, "=true false"),
            (r#"{{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge .args.f 2}} {{lt -1 .args.zero}}"#, "=true true true false true"),
            ("{{lt .args.city 3}}", "!incompatible types for comparison"),
            ("{{lt .args.t .args.t}}", "!invalid type for comparison"),
            ("{{eq .args.obj .args.obj}}", "!incomparable"),
            (r#"{{eq .args.t "true"}}"#, "!incompatible types"),
            (r#"{{print "a" "b" 1 2 "c"}}"#, "=ab1 2c"),
            (r#"{{println "a" 1}}"#, "=a 1\n"),
            (r#"{{printf "%s-%d-%.2f-%v-%q" .args.city .args.n .args.f .args.t "x"}}"#, r#"=Paris-3-1.50-true-"x""#),
            (r#"{{printf "%05.1f|%x|%5s|%-5s|" 3.14259 255 "ab" "cd"}}"#, "=003.1|ff|   ab|cd   |"),
            (r#"{{printf "%d %s" 1}}"#, "=1 %!s(MISSING)"),
            (r#"{{printf "%v %v" .args.obj .args.missing}}"#, r#"={"b":2,"a":1} <nil>"#),
            (r#"{{.args.n | printf "n=%d"}}"#, "=n=3"),
            (r#"{{printf "%d" 3.0}} {{printf "%.1f" 2}}"#, "=3 2.0"),
            ("{{html .args.html}} {{js \"it's\"}}", r#"=&lt;a&amp;b&gt; it\'s"#),
            ("{{toString .args.n | len}} {{toString .args.city}}", "=1 Paris"),
            (
                r#"{{int "42"}} {{int "4.00"}} {{int 3.9}} {{int "x"}} {{int "0x10"}} {{float64 "1.5"}} {{atoi "12"}} {{int64 .args.t}}"#,
                "=42 4 3 0 16 1.5 12 1",
            ),
            (
                "{{add 1 2 3}} {{sub 5 7}} {{mul 2 3 4}} {{div 7 2}} {{mod 7 3}} {{add1 .args.n}} {{max 1 5 3}} {{min 4 2}}",
                "=6 -2 24 3 1 4 5 2",
            ),
            ("{{div 1 0}}", "!div: integer divide by zero"),
            ("{{addf 1.5 2}} {{subf 5 0.5}} {{mulf 1.5 2}} {{divf 1 4}} {{floor 1.7}} {{ceil 1.2}}", "=3.5 4.5 3 0.25 1 2"),
            (r#"{{repeat 3 "ab"}} [{{repeat 0 "x"}}]"#, "=ababab []"),
            (r#"{{repeat -1 "x"}}"#, "!negative repeat count"),
            (r#"{{substr 1 3 "hello"}} {{substr -1 2 "hello"}} {{substr 2 99 "hello"}} {{trunc 2 "hello"}} {{trunc -2 "hello"}}"#, "=el he llo he lo"),
            (r#"{{trunc 2 "héllo"}} {{substr 0 2 "héllo"}}"#, "=h h"),
            (r#"{{substr 4 2 "hello"}}"#, "!slice bounds out of range"),
            ("{{nospace \" a b\\tc \"}}", "=abc"),
            (r#"{{indent 2 "a\nb"}}|{{nindent 2 "a"}}"#, "=  a\n  b|\n  a"),
            (r#"{{cat "a" .args.missing 1}}"#, "=a 1"),
            ("{{first .args.list}} {{last .args.list}} [{{first .args.arr}}]", "=a c []"),
            ("{{first .args.city}}", "!cannot find first on string"),
            (r#"{{has "b" .args.list}} {{has "z" .args.list}} {{has 1 .args.missing}}"#, "=true false false"),
            (r#"{{hasKey .args.obj "a"}} {{get .config.opts "z"}} [{{get .args.obj "q"}}] {{hasKey .args.missing "a"}}"#, "=true 1 [] false"),
            (r#"{{fail "bad input"}}"#, "!fail: bad input at 1:3"),
            (r#"{{sha256sum "abc"}}"#, "=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (r#"{{slice "hello" 1 3}} {{slice .args.list 1 | toJson}} {{slice .args.list}}"#, r#"=el ["b","c"] ["a","b","c"]"#),
            (r#"{{slice "héllo" 1 2}}"#, "!split a UTF-8 character"),
            (r#"{{all 1 "a" true}} {{any 0 "" .args.t}} {{all}} {{any}}"#, "=true true true false"),
            (r#"{{list 1 "a" .args.t | toJson}} {{list | len}}"#, r#"=[1,"a",true] 0"#),
            ("{{len (list .args.list .config.tags)}}", "=2"),
            ("{{$l := list 1}}{{range 100}}{{$l = list $l}}{{end}}", "!lists nested deeper than 64"),
            ("{{$l := list 1}}{{range 10}}{{$l = list $l $l}}{{end}}{{len $l}}", "=2"),
            // Shared lists are exponentially large when written: the cap stops the writer.
            ("{{$l := list 1}}{{range 60}}{{$l = list $l $l}}{{end}}{{$l}}", "!exceeds"),
            ("{{$l := list 1}}{{range 60}}{{$l = list $l $l}}{{end}}{{toJson $l | len}}", "!exceeds"),
            ("{{$l := list 1}}{{range 60}}{{$l = list $l $l}}{{end}}{{printf \"%v\" $l | len}}", "!exceeds"),
            ("{{$l := list 1}}{{range 60}}{{$l = list $l $l}}{{end}}{{join \",\" $l | len}}", "!exceeds"),
        ],
        render,
    );
}

#[test]
fn url_escaping() {
    let url = |src: &str| render_with(src, ARGS, CONFIG, DATA, Escape::Url);
    check(
        &[
            ("https://x/{{.args.q}}?a={{.args.amp}}", "=https://x/..%2Fadmin%3Fx%3D1?a=a%26b%3Dc"),
            ("/p/{{.args.q | urlquery}}", "=/p/..%2Fadmin%3Fx%3D1"),
            (r#"/s?q={{"a b"}}"#, "=/s?q=a%20b"),
            ("{{if .args.t}}/lit?{{end}}{{.args.city}}", "=/lit?Paris"),
            (r#"{{upper "é"}}"#, "=%C3%89"),
            ("/{{.args.list}}", "=/%5B%22a%22%2C%22b%22%2C%22c%22%5D"),
            ("/{{.args.n}}/{{.args.f}}/{{.args.missing}}/x", "=/3/1.5//x"),
            ("{{$u := .args.q}}/a{{$u}}", "=/a..%2Fadmin%3Fx%3D1"),
            ("{{range .args.list}}/{{.}}-{{end}}", "=/a-/b-/c-"),
        ],
        url,
    );
}

#[test]
fn compile_errors_name_the_position() {
    check(
        &[
            ("{{.args.x", "!unclosed action at 1:1"),
            ("{{if .x}}y{{end}}{{end}}", "!unexpected {{end}} at 1:18"),
            ("{{if .x}}y", "!unclosed {{if}} opened at 1:1"),
            ("ab\n{{range .x}}", "!unclosed {{range}} opened at 2:1"),
            ("{{foo .x}}", "!unknown function \"foo\" at 1:3"),
            ("a\n  {{ nosuch }}", "!unknown function \"nosuch\" at 2:6"),
            ("{{}}", "!empty action at 1:1"),
            ("{{ }}", "!empty action"),
            ("x{{else}}", "!unexpected {{else}} at 1:2"),
            ("{{break}}", "!{{break}} outside {{range}}"),
            ("{{if 1}}{{continue}}{{end}}", "!{{continue}} outside {{range}}"),
            ("{{not 1 2}}", "!wrong number of arguments for \"not\": want 1, got 2 at 1:3"),
            ("{{eq 1}}", "!want at least 2, got 1"),
            ("{{1 | not 2}}", "!want 1, got 2"),
            ("{{.args.x | .args.y}}", "!pipeline stage 2 is not a function call"),
            ("{{3 | 4}}", "!pipeline stage 2 is not a function call"),
            (r#"{{"a" "b"}}"#, "!can't give argument to non-function"),
            ("{{.x 1}}", "!can't give argument to non-function"),
            (r#"{{template "x"}}"#, "!not supported"),
            (r#"{{define "x"}}{{end}}"#, "!not supported"),
            ("{{\"unterminated}}", "!unterminated quoted string"),
            ("{{`raw}}", "!unterminated raw string"),
            ("{{/* x }}", "!unclosed comment"),
            ("{{/* x */ .y}}", "!comment ends before closing delimiter"),
            ("{{range .x}}{{else if .y}}{{end}}", "!{{else if}} inside {{range}}"),
            ("{{if .x}}{{else with .y}}{{end}}", "!{{else with}} inside {{if}}"),
            ("{{if .x}}{{else}}{{else}}{{end}}", "!unexpected {{else}} after {{else}}"),
            ("{{.a.b.}}", "!unexpected"),
            ("{{(.a}}", "!unexpected }}"),
            ("{{.a)}}", "!unexpected )"),
            ("{{3x}}", "!bad number syntax"),
            ("{{3é}}", "!bad number syntax"),
            ("{{\"a\"\"b\"}}", "!missing space"),
            ("{{if}}{{end}}", "!missing value for if"),
            ("{{range $a, $b, $c := .x}}{{end}}", "!expected := or ="),
            ("{{$a, $b := 1}}", "!too many declarations"),
            ("{{'ab'}}", "!malformed character constant"),
            ("{{ # }}", "!unexpected character"),
            ("{{0x1p3}}", "!not supported"),
            ("{{print if}}", "!unexpected keyword"),
            ("{{.a | len (list)}}", "!want 1, got 2"),
        ],
        render,
    );
    let deep = format!("{}{}", "{{if 1}}".repeat(65), "{{end}}".repeat(65));
    assert!(Template::compile(&deep).unwrap_err().contains("nesting deeper than 64"));
    let parens = format!("{{{{{}1{}}}}}", "(".repeat(100), ")".repeat(100));
    assert!(Template::compile(&parens).unwrap_err().contains("nesting deeper than 64"));
    let ok = format!("{}x{}", "{{if 1}}".repeat(60), "{{end}}".repeat(60));
    assert_eq!(render(&ok).unwrap(), "x");
}

#[test]
fn limits_stop_hostile_input() {
    let big = format!("[{}]", vec!["1"; 1000].join(","));
    let long = "x".repeat(10_000);
    let args = format!(r#"{{"big":{big},"long":"{long}"}}"#);
    let run = |src: &str| render_with(src, &args, "{}", "", Escape::None);
    check(
        &[
            ("{{range .args.big}}{{range $.args.big}}{{end}}{{end}}", "!budget"),
            ("{{range .args.big}}{{$.args.long}}{{end}}", "!exceeds"),
            (r#"{{repeat 10000000 "ab"}}"#, "!exceeds"),
            ("{{range 1000000}}{{end}}", "!budget"),
            (r#"{{$s := repeat 1000 "ab"}}{{range 40}}{{$s = replace "" "xx" $s}}{{end}}"#, "!exceeds"),
            (r#"{{$s := "ab"}}{{range 40}}{{$s = printf "%s%s" $s $s}}{{end}}"#, "!exceeds"),
            (r#"{{printf "%10000d" 1 | len}}"#, "=10000"),
            ("{{range .args.big}}{{if contains \"y\" $.args.long}}{{end}}{{end}}", "="),
        ],
        run,
    );
    // Scanning a 1 MB argument 100 times per iteration runs out of work, not time.
    let huge = format!(r#"{{"s":"{}","l":[{}]}}"#, "a".repeat(1 << 20), vec!["0"; 200].join(","));
    let err = render_with(
        r#"{{range .args.l}}{{range $.args.l}}{{if contains "b" $.args.s}}{{end}}{{end}}{{end}}"#,
        &huge,
        "{}",
        "",
        Escape::None,
    )
    .unwrap_err();
    assert!(err.contains("budget"), "{err}");
    // Deeply nested arguments are written without recursion.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let out =
        render_with("{{.args.d | toJson | len}}", &format!(r#"{{"d":{deep}}}"#), "{}", "", Escape::None);
    assert_eq!(out.unwrap(), "200000");
}

#[test]
fn static_and_constant() {
    for (src, constant, is_static) in [
        ("plain", true, true),
        ("a{{/* c */}}b", true, true),
        ("{{.config.apiKey}}", false, true),
        ("{{with .config}}{{.apiKey}}{{end}}", false, true),
        (r#"{{.config.k | default "x" | upper}}"#, false, true),
        ("{{$k := .config.k}}{{$k}}", false, true),
        ("{{$.config.k}}", false, true),
        ("{{.args.x}}", false, false),
        ("{{$}}", false, false),
        ("{{.}}", false, false),
        ("{{.current}}", false, false),
        ("{{$.args.x}}", false, false),
        ("{{with .config}}{{$.args.x}}{{end}}", false, false),
    ] {
        let t = Template::compile(src).unwrap();
        assert_eq!((t.is_constant(), t.is_static()), (constant, is_static), "{src}");
    }
}

#[test]
fn rendering_without_args_or_data() {
    let t = Template::compile("[{{.args.x}}|{{.config.k}}|{{.y}}|{{len .args}}]").unwrap();
    let mut out = Vec::new();
    t.render(&mut out, &Context::default()).unwrap();
    assert_eq!(out, b"[|||0]");
}

#[test]
fn every_function_name_compiles() {
    for name in funcs::names() {
        let f = func::Func::lookup(name).unwrap();
        // Enough arguments for any arity.
        let args = (0..4).map(|_| " 1").collect::<String>();
        let src = format!("{{{{{name}{args}}}}}");
        let res = Template::compile(&src);
        assert!(res.is_ok() || f.check_arity(4).is_err(), "{name}: {res:?}");
    }
}

#[test]
fn higress_functions_random_dates_regex_and_join() {
    let rows = [
        // Dates over fixed instants (Unix seconds or Go's time string); zones by IANA name.
        (r#"{{date "2006-01-02 15:04" 1772600767}}"#, "=2026-03-04 05:06"),
        (r#"{{dateInZone "20060102 15h MST" 1772600767 "Asia/Shanghai"}}"#, "=20260304 13h CST"),
        (
            r#"{{date_in_zone "Mon Jan _2" "2026-03-04 05:06:07 +0000 UTC" "America/New_York"}}"#,
            "=Wed Mar  4",
        ),
        (r#"{{dateInZone "15:04" 1772600767 "No/Such_Zone"}}"#, "=05:06"),
        (
            r#"{{htmlDate 1772600767}} {{htmlDateInZone 1772600767 "Pacific/Kiritimati"}}"#,
            "=2026-03-04 2026-03-04",
        ),
        (r#"{{unixEpoch "2026-03-04T05:06:07Z"}}"#, "=1772600767"),
        (r#"{{dateModify "-1.5h" "2026-03-04 05:06:07 +0000 UTC" | date "15:04"}}"#, "=03:36"),
        (r#"{{dateModify "1 day" 0}}"#, "!is not a duration"),
        // Regular expressions.
        (r#"{{regexMatch "^P[a-z]+$" .args.city}}"#, "=true"),
        (r#"{{regexFind "[aeiou]" .args.city}}"#, "=a"),
        (r#"{{regexFindAll "[a-z]" .args.city 3 | join "-"}}"#, "=a-r-i"),
        (r#"{{regexReplaceAll "(a)(r)" .args.city "${2}${1}"}}"#, "=Prais"),
        (r#"{{regexReplaceAllLiteral "a" .args.city "$1"}}"#, "=P$1ris"),
        (r#"{{regexSplit "r" .args.city -1 | len}}"#, "=2"),
        (r#"{{regexMatch "(" "x"}}"#, "!invalid pattern"),
        // sprig's join wants a string separator: ',' is a number in Go.
        (r#"{{.args.list | join ","}}"#, "=a,b,c"),
        (r#"{{.args.list | join ','}}"#, "!the separator must be a string"),
        (r#"{{randAlpha 5000}}"#, "!at most 4096"),
    ];
    check(&rows, render);

    // Random values: their shape, and that two renders differ.
    let uuid = render("{{uuidv4}}").unwrap();
    let shape =
        regex::Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$").unwrap();
    assert!(shape.is_match(&uuid), "{uuid}");
    assert_ne!(uuid, render("{{uuidv4}}").unwrap());
    let r = render("{{randAlphaNum 12}}|{{randNumeric 4}}|{{randAlpha 3}}|{{randAscii 6}}").unwrap();
    let parts: Vec<&str> = r.split('|').collect();
    assert!(parts[0].len() == 12 && parts[0].bytes().all(|b| b.is_ascii_alphanumeric()), "{r}");
    assert!(parts[1].len() == 4 && parts[1].bytes().all(|b| b.is_ascii_digit()), "{r}");
    assert!(parts[2].len() == 3 && parts[2].bytes().all(|b| b.is_ascii_alphabetic()), "{r}");
    assert_eq!(parts[3..].join("|").len(), 6, "{r}");

    // `now` is the current time; a template reading the clock is never rendered once at load.
    let year = render(r#"{{now | date "2006"}}"#).unwrap();
    assert!(year.parse::<i32>().unwrap() >= 2026, "{year}");
    for src in ["{{uuidv4}}", r#"{{now | date "2006"}}"#, "{{getRealIP}}", "{{randNumeric 3}}"] {
        assert!(!Template::compile(src).unwrap().is_static(), "{src}");
    }
}

#[test]
fn caller_address_functions() {
    let t = Template::compile("{{getRealIP}}|{{getSocketIP}}").unwrap();
    let run = |xff: Option<&str>, peer: Option<&str>| {
        let mut out = Vec::new();
        let client = Client { forwarded_for: xff.map(str::as_bytes), peer: peer.map(|p| p.parse().unwrap()) };
        t.render(&mut out, &Context { client, ..Context::default() }).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(run(Some("203.0.113.7, 10.0.0.1"), Some("127.0.0.1")), "203.0.113.7|127.0.0.1");
    assert_eq!(run(Some("203.0.113.7:5555"), Some("127.0.0.1")), "203.0.113.7|127.0.0.1");
    assert_eq!(run(Some("[2001:db8::1]:443"), None), "2001:db8::1|");
    // What is not an address is the client's text, not an address: the peer's is used.
    assert_eq!(run(Some("1.2.3.4&admin=true"), Some("127.0.0.1")), "127.0.0.1|127.0.0.1");
    assert_eq!(run(None, Some("::1")), "::1|::1");
    assert_eq!(run(None, None), "|");
}
