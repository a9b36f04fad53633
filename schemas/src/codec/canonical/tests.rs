use serde_json::json;

use super::*;

fn form(text: &str) -> String {
    parsing_canonical_form(&serde_json::from_str(text).unwrap()).unwrap()
}

fn refusal(v: Value) -> String {
    match parsing_canonical_form(&v) {
        Err(SchemaError::Invalid { field, reason }) => format!("{field}: {reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The Avro project's own test vectors, share/test/data/schema-tests.txt in apache/avro
/// (commit 0ea74a36cebb2e5fbc37e599814a05c33cb7d424; the Java implementation cross-checks
/// them with a direct implementation of the fingerprint): input, canonical form and, where
/// the file gives one, the fingerprint as Java's `long`. Numbered as there.
const AVRO_VECTORS: &[(&str, &str, Option<i64>)] = &[
    (r#""null""#, r#""null""#, Some(7195948357588979594)),                                        // 000
    (r#"{"type":"null"}"#, r#""null""#, None),                                                    // 001
    (r#""boolean""#, r#""boolean""#, Some(-6970731678124411036)),                                 // 002
    (r#"{"type":"boolean"}"#, r#""boolean""#, None),                                              // 003
    (r#""int""#, r#""int""#, Some(8247732601305521295)),                                          // 004
    (r#"{"type":"int"}"#, r#""int""#, None),                                                      // 005
    (r#""long""#, r#""long""#, Some(-3434872931120570953)),                                       // 006
    (r#"{"type":"long"}"#, r#""long""#, None),                                                    // 007
    (r#""float""#, r#""float""#, Some(5583340709985441680)),                                      // 008
    (r#"{"type":"float"}"#, r#""float""#, None),                                                  // 009
    (r#""double""#, r#""double""#, Some(-8181574048448539266)),                                   // 010
    (r#"{"type":"double"}"#, r#""double""#, None),                                                // 011
    (r#""bytes""#, r#""bytes""#, Some(5746618253357095269)),                                      // 012
    (r#"{"type":"bytes"}"#, r#""bytes""#, None),                                                  // 013
    (r#""string""#, r#""string""#, Some(-8142146995180207161)),                                   // 014
    (r#"{"type":"string"}"#, r#""string""#, None),                                                // 015
    (r#"[  ]"#, r#"[]"#, Some(-1241056759729112623)),                                             // 016
    (r#"[ "int"  ]"#, r#"["int"]"#, Some(-5232228896498058493)),                                  // 017
    (r#"[ "int" , {"type":"boolean"} ]"#, r#"["int","boolean"]"#, Some(5392556393470105090)),     // 018
    (r#"{"fields":[], "type":"record", "name":"foo"}"#, r#"{"name":"foo","type":"record","fields":[]}"#, Some(-4824392279771201922)), // 019
    (
        r#"{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}"#,
        r#"{"name":"x.y.foo","type":"record","fields":[]}"#,
        Some(5916914534497305771),
    ), // 020
    (
        r#"{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}"#,
        r#"{"name":"a.b.foo","type":"record","fields":[]}"#,
        Some(-4616218487480524110),
    ), // 021
    (r#"{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}"#, r#"{"name":"foo","type":"record","fields":[]}"#, Some(-4824392279771201922)), // 022
    (r#"{"fields":[], "type":"record", "name":"foo", "aliases":["foo","bar"]}"#, r#"{"name":"foo","type":"record","fields":[]}"#, Some(-4824392279771201922)), // 023
    (
        r#"{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}"#,
        r#"{"name":"foo","type":"record","fields":[]}"#,
        Some(-4824392279771201922),
    ), // 024
    (
        r#"{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}"#,
        r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}"#,
        Some(7843277075252814651),
    ), // 025
    (
        r#"{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},
                      {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
            "type":"record", "name":"foo"
          }"#,
        r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}"#,
        Some(-4860222112080293046),
    ), // 026
    (r#"{"type":"enum", "name":"foo", "symbols":["A1"]}"#, r#"{"name":"foo","type":"enum","symbols":["A1"]}"#, Some(-6342190197741309591)), // 027
    (
        r#"{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}"#,
        r#"{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}"#,
        Some(-4448647247586288245),
    ), // 028
    (r#"{"name":"foo","type":"fixed","size":15}"#, r#"{"name":"foo","type":"fixed","size":15}"#, Some(1756455273707447556)), // 029
    (
        r#"{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}"#,
        r#"{"name":"x.y.z.foo","type":"fixed","size":32}"#,
        Some(-3064184465700546786),
    ), // 030
    (r#"{ "items":{"type":"null"}, "type":"array"}"#, r#"{"type":"array","items":"null"}"#, Some(-589620603366471059)), // 031
    (r#"{ "values":"string", "type":"map"}"#, r#"{"type":"map","values":"string"}"#, Some(-8732877298790414990)), // 032
    (
        r#"{"name":"PigValue","type":"record",
            "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}"#,
        r#"{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}"#,
        Some(-1759257747318642341),
    ), // 033
];

#[test]
fn avro_project_test_vectors() {
    for (i, (input, canonical, fp)) in AVRO_VECTORS.iter().enumerate() {
        assert_eq!(form(input), *canonical, "vector {i:03}");
        if let Some(fp) = fp {
            assert_eq!(crc64_avro(canonical.as_bytes()) as i64, *fp, "vector {i:03}");
            let bytes = fingerprint(&serde_json::from_str(input).unwrap()).unwrap();
            assert_eq!(i64::from_le_bytes(bytes), *fp, "vector {i:03}: single-object bytes are little-endian");
        }
    }
}

#[test]
fn crc64_agrees_with_apache_avro_rabin() {
    // A second implementation of the checksum: apache-avro's Rabin digest, reached through
    // schemas whose canonical form apache-avro computes as the spec does (no logical types).
    let mut compared = 0;
    for (i, (input, canonical, _)) in AVRO_VECTORS.iter().enumerate() {
        // apache-avro refuses vector 026, whose boolean default is the string "true".
        let Ok(schema) = apache_avro::Schema::parse_str(input) else { continue };
        assert_eq!(schema.canonical_form(), *canonical, "vector {i:03}");
        let theirs = schema.fingerprint::<apache_avro::rabin::Rabin>().bytes;
        assert_eq!(theirs, crc64_avro(canonical.as_bytes()).to_le_bytes(), "vector {i:03}");
        compared += 1;
    }
    assert_eq!(compared, AVRO_VECTORS.len() - 1);
    // The empty input leaves the spec's EMPTY constant; apache-avro documents "hello world".
    assert_eq!(crc64_avro(b""), 0xc15d_213a_a4d7_a795);
    assert_eq!(crc64_avro(b"hello world").to_le_bytes(), [0x60, 0x33, 0x5b, 0xa6, 0xd0, 0x41, 0x55, 0x28]);
}

#[test]
fn primitives_drop_logical_types_and_other_attributes() {
    assert_eq!(form(r#"{"type":"long","logicalType":"timestamp-micros"}"#), r#""long""#);
    assert_eq!(form(r#"{"type":"string","logicalType":"uuid"}"#), r#""string""#);
    assert_eq!(form(r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}"#), r#""bytes""#);
    assert_eq!(form(r#"["null",{"type":"long","logicalType":"timestamp-micros"}]"#), r#"["null","long"]"#);
    // A named type keeps its name and size, never its logical type.
    assert_eq!(
        form(r#"{"type":"fixed","name":"d","size":8,"logicalType":"decimal","precision":10}"#),
        r#"{"name":"d","type":"fixed","size":8}"#
    );
}

#[test]
fn fullnames_follow_the_enclosing_namespace() {
    let input = r#"{"type":"record","name":"Outer","namespace":"a.b","fields":[
        {"name":"inner","type":{"type":"record","name":"Inner","fields":[]}},
        {"name":"again","type":"Inner"},
        {"name":"full_ref","type":"a.b.Inner"},
        {"name":"other","type":{"type":"enum","name":"E","namespace":"c","symbols":["X"]}},
        {"name":"e_ref","type":{"type":"array","items":"c.E"}},
        {"name":"dotted","type":{"type":"record","name":"d.D","namespace":"ignored","fields":[
            {"name":"child","type":{"type":"fixed","name":"F","size":1}}]}},
        {"name":"nulls","type":{"type":"record","name":"N","namespace":"","fields":[]}},
        {"name":"obj_ref","type":{"type":"Inner"}}
    ]}"#;
    assert_eq!(
        form(input),
        concat!(
            r#"{"name":"a.b.Outer","type":"record","fields":["#,
            r#"{"name":"inner","type":{"name":"a.b.Inner","type":"record","fields":[]}},"#,
            r#"{"name":"again","type":"a.b.Inner"},"#,
            r#"{"name":"full_ref","type":"a.b.Inner"},"#,
            r#"{"name":"other","type":{"name":"c.E","type":"enum","symbols":["X"]}},"#,
            r#"{"name":"e_ref","type":{"type":"array","items":"c.E"}},"#,
            // A dotted name ignores `namespace` and gives its children its own namespace.
            r#"{"name":"dotted","type":{"name":"d.D","type":"record","fields":[{"name":"child","type":{"name":"d.F","type":"fixed","size":1}}]}},"#,
            // The empty namespace is the null namespace, for the type and what it contains.
            r#"{"name":"nulls","type":{"name":"N","type":"record","fields":[]}},"#,
            // `{"type": NAME}` is a reference too (Java's parser accepts it).
            r#"{"name":"obj_ref","type":"a.b.Inner"}"#,
            "]}"
        ),
        "{input}"
    );
}

#[test]
fn order_strings_integers_and_whitespace() {
    // ORDER: attributes come out as name, type, fields/symbols/items/values/size.
    assert_eq!(form(r#"{"size":"016","type":"fixed","name":"f"}"#), r#"{"name":"f","type":"fixed","size":16}"#, "INTEGERS");
    // STRINGS: escapes in the input become plain characters.
    assert_eq!(
        form(r#"{"type":"enum","name":"\u0045num","symbols":["\u0041","B"]}"#),
        r#"{"name":"Enum","type":"enum","symbols":["A","B"]}"#
    );
    // WHITESPACE: none outside strings, however the input was laid out.
    assert_eq!(form("{ \"type\" :\n\t\"map\" , \"values\" : [ \"null\" ,\n \"int\" ] }"), r#"{"type":"map","values":["null","int"]}"#);
}

#[test]
fn malformed_schemas_are_refused_with_the_place() {
    assert_eq!(refusal(json!({"type": "record", "name": "r", "fields": [{"name": "f", "type": "Nope"}]})), "schema at .fields[0].type: refers to `Nope`, which is not defined before this point");
    assert!(refusal(json!(["int", {"type": "enum", "name": "e", "symbols": []}, {"type": "enum", "name": "e", "symbols": []}])).contains("`e` is defined twice"));
    assert_eq!(refusal(json!({"type": "record", "name": "r"})), "schema: has no `fields`");
    assert!(refusal(json!({"type": {"type": "int"}})).contains("must be a type name"));
    assert!(refusal(json!({"type": "fixed", "name": "f", "size": -1})).contains("not a non-negative integer"));
    assert!(refusal(json!({"type": "fixed", "name": "long", "size": 1})).contains("redefines a primitive"));
    assert!(refusal(json!(42)).contains("is not a schema"));
    // Per the spec a short name means the enclosing namespace, so a type of the null namespace
    // cannot be named from inside another (fastavro agrees; Java falls back to the null one).
    let null_from_inside = json!({"type": "record", "name": "a.Outer", "fields": [
        {"name": "n", "type": {"type": "record", "name": "N", "namespace": "", "fields": []}},
        {"name": "again", "type": "N"}]});
    assert!(refusal(null_from_inside).contains("refers to `a.N`"));
    assert!(refusal(json!({"type": "array", "items": {"type": "map"}})).contains("schema at .items: has no `values`"));
}
