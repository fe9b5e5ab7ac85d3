//! Schema reading and writing against the real files Merlin wrote for tenrec-video.

use mtl::schema::{json, pbtxt, ColumnSchema, DType, Domain, Schema, Tag, TagSet};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/merlin-tenrec-video"
);

fn fixture(name: &str) -> String {
    format!("{FIXTURE}/{name}")
}

#[test]
fn json_and_pbtxt_of_merlin_load_to_the_same_schema() {
    let from_json = Schema::from_file(fixture("schema.json")).unwrap();
    let from_pbtxt = Schema::from_file(fixture("schema.pbtxt")).unwrap();
    assert_eq!(from_json, from_pbtxt);
    assert_eq!(
        from_json.column_names(),
        [
            "user_id",
            "item_id",
            "video_category",
            "gender",
            "age",
            "click",
            "follow",
            "like",
            "share",
            "watching_times"
        ]
    );
}

#[test]
fn merlin_columns_load_with_merlin_semantics() {
    let schema = Schema::from_file(fixture("schema.pbtxt")).unwrap();
    let user = schema.get("user_id").unwrap();
    assert_eq!(user.dtype, DType::Int32);
    assert_eq!(
        user.tags,
        TagSet::new([Tag::User, Tag::Id, Tag::Categorical]).unwrap()
    );
    assert!(user.has_tag(&Tag::UserId));
    assert_eq!(
        user.domain,
        Some(Domain::Int {
            min: 0,
            max: 100_000,
            name: Some("user_id".into())
        })
    );
    assert_eq!(user.cardinality(), Some(100_001));
    assert_eq!(user.embedding_sizes(), Some((2_633_851.0, 512.0)));
    assert_eq!(user.start_index(), Some(1.0));
    assert_eq!(
        user.properties["cat_path"],
        ".//categories/unique.user_id.parquet"
    );
    assert!(user.properties["num_buckets"].is_null());
    // Consumed at load time, regenerated on write.
    for key in ["_dims", "is_list", "is_ragged", "dtype_item_size"] {
        assert!(!user.properties.contains_key(key), "{key}");
    }
    assert!(!user.is_list() && !user.is_ragged());

    let click = schema.get("click").unwrap();
    assert_eq!(click.dtype, DType::Int8);
    assert!(click.has_tag(&Tag::BinaryClassification) && click.has_tag(&Tag::Binary));
    assert!(click.has_tag(&Tag::Target) && !click.has_tag(&Tag::Categorical));
    assert_eq!(click.domain, None);

    let watch = schema.get("watching_times").unwrap();
    assert_eq!(watch.dtype, DType::Int16);
    assert_eq!(watch.int_domain(), Some((0, 5)));
    assert!(
        !watch.has_tag(&Tag::Categorical),
        "is_categorical is unset in the file"
    );
}

#[test]
fn written_json_reloads_identically() {
    let dir = tempfile::tempdir().unwrap();
    for source in ["schema.json", "schema.pbtxt"] {
        let schema = Schema::from_file(fixture(source)).unwrap();
        let out = dir.path().join("schema.json");
        schema.write_json(&out).unwrap();
        assert_eq!(Schema::from_file(&out).unwrap(), schema, "{source}");
    }
}

#[test]
fn written_json_has_the_protobuf_json_form() {
    let schema = Schema::from_file(fixture("schema.pbtxt")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json::to_string(&schema)).unwrap();
    let user = &doc["feature"][0];
    assert_eq!(user["name"], "user_id");
    assert_eq!(user["type"], "INT");
    assert_eq!(user["intDomain"]["max"], "100000", "int64 as a string");
    assert_eq!(user["intDomain"]["isCategorical"], true);
    assert_eq!(
        user["annotation"]["extraMetadata"][0]["dtype_item_size"],
        32.0
    );
    assert_eq!(
        user["annotation"]["extraMetadata"][0]["_dims"],
        serde_json::json!([])
    );
}

#[test]
fn list_columns_and_float_domains_round_trip() {
    let schema = Schema::new([
        ColumnSchema::new("genres")
            .with_tags(["categorical", "item"])
            .unwrap()
            .with_dtype(DType::Int64)
            .with_int_domain(0, 100, Some("genres"))
            .with_list_len(4, Some(48)),
        ColumnSchema::new("history")
            .with_tags(["categorical", "sequence"])
            .unwrap()
            .with_dtype(DType::Int32)
            .with_int_domain(0, 9, None)
            .with_list_len(0, None),
        ColumnSchema::new("price")
            .with_tags(["continuous"])
            .unwrap()
            .with_dtype(DType::Float32)
            .with_domain(Domain::Float {
                min: 0.5,
                max: 99.5,
                name: None,
            }),
    ])
    .unwrap();
    assert!(schema.get("genres").unwrap().is_list());
    assert!(schema.get("genres").unwrap().is_ragged());
    assert!(schema.get("history").unwrap().is_ragged());
    let reloaded = json::from_str(&json::to_string(&schema), "mem").unwrap();
    assert_eq!(reloaded, schema);
}

#[test]
fn pbtxt_value_count_and_expanded_any_are_read() {
    let text = r#"
feature {
  name: "hotel_country"
  value_count { min: 4 max: 48 }
  type: INT
  int_domain { name: "hotel_country" max: 196 is_categorical: true }
  annotation {
    tag: "sequence"
    tag: "categorical"
    extra_metadata {
      [type.googleapis.com/google.protobuf.Struct] {
        fields { key: "start_index" value { number_value: 1 } }
        fields { key: "sizes" value { struct_value { fields { key: "d" value { number_value: 8 } } } } }
        fields { key: "xs" value { list_value { values { bool_value: true } values { null_value: NULL_VALUE } } } }
      }
    }
  }
}"#;
    let schema = pbtxt::from_str(text, "inline.pbtxt").unwrap();
    let c = schema.get("hotel_country").unwrap();
    assert_eq!(
        c.dtype,
        DType::Int64,
        "INT without dtype_item_size is int64"
    );
    assert!(c.is_list() && c.is_ragged());
    assert_eq!(c.value_count().unwrap().max, Some(48));
    assert_eq!(c.start_index(), Some(1.0));
    assert_eq!(c.properties["sizes"]["d"], 8.0);
    assert_eq!(c.properties["xs"], serde_json::json!([true, null]));
}

#[test]
fn schema_operations_follow_merlin() {
    let schema = Schema::from_file(fixture("schema.json")).unwrap();
    let names = |s: &Schema| s.column_names().join(",");
    // One compound tag means all of its atoms.
    assert_eq!(names(&schema.select_by_tag(&[Tag::UserId])), "user_id");
    // Several tags: any of their atoms.
    assert_eq!(
        names(&schema.select_by_tag(&[Tag::UserId, Tag::Item])),
        "user_id,item_id,video_category,gender,age"
    );
    assert_eq!(
        names(&schema.select_by_tag(&[Tag::Target])),
        "click,follow,like,share,watching_times"
    );
    assert_eq!(
        names(&schema.excluding_by_tag(&[Tag::Target])),
        "user_id,item_id,video_category,gender,age"
    );
    assert_eq!(
        names(&schema.select_by_all_tags(&[Tag::Categorical, Tag::User])),
        "user_id,gender,age"
    );
    assert_eq!(
        names(&schema.select_by_name(&["like", "nope", "click"])),
        "like,click"
    );
    assert_eq!(
        names(&schema.without(&["like", "follow", "share"])),
        "user_id,item_id,video_category,gender,age,click,watching_times"
    );
    let extra = Schema::new([
        ColumnSchema::new("age")
            .with_tags(["continuous"])
            .unwrap()
            .with_dtype(DType::Float32),
        ColumnSchema::new("new_col"),
    ])
    .unwrap();
    let union = schema.union(&extra);
    assert_eq!(union.len(), 11);
    let age = union.get("age").unwrap();
    assert_eq!(age.dtype, DType::Float32);
    assert!(age.has_tag(&Tag::Continuous) && !age.has_tag(&Tag::Categorical));
    assert!(
        age.has_tag(&Tag::User),
        "non-colliding tags survive the merge"
    );
    assert_eq!(schema.first().unwrap().name, "user_id");
    assert!(Schema::default().first().is_err());
}

#[test]
fn a_dataset_directory_finds_merlins_schema_files() {
    let found = Schema::find_in_dir(fixture("valid")).unwrap();
    assert!(found.ends_with("schema.pbtxt"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".merlin")).unwrap();
    std::fs::copy(
        fixture("valid/.merlin/schema.json"),
        dir.path().join(".merlin/schema.json"),
    )
    .unwrap();
    assert_eq!(
        Schema::from_dir(dir.path()).unwrap(),
        Schema::from_file(fixture("schema.json")).unwrap()
    );
    let empty = tempfile::tempdir().unwrap();
    let err = Schema::from_dir(empty.path()).unwrap_err().to_string();
    assert!(err.contains("no schema.json"), "{err}");
}

// ---------------------------------------------------------------- malformed files

fn json_err(text: &str) -> String {
    json::from_str(text, "bad/schema.json")
        .unwrap_err()
        .to_string()
}

fn pbtxt_err(text: &str) -> String {
    pbtxt::from_str(text, "bad/schema.pbtxt")
        .unwrap_err()
        .to_string()
}

#[test]
fn malformed_json_errors_name_file_position_and_field() {
    let e = json_err("{\"feature\": [\n  {\"name\": \"a\",}\n]}");
    assert!(
        e.contains("bad/schema.json:2:") && e.contains("not valid JSON"),
        "{e}"
    );

    let e = json_err(r#"{"feature": {"name": "a"}}"#);
    assert!(
        e.contains("bad/schema.json: feature") && e.contains("expected an array"),
        "{e}"
    );

    let e = json_err(r#"{"feature": [{"name": "a", "intDomain": {"max": "ten"}}]}"#);
    assert!(
        e.contains("feature[0].intDomain.max") && e.contains("\"ten\""),
        "{e}"
    );

    let e = json_err(r#"{"feature": [{"type": "INT"}]}"#);
    assert!(
        e.contains("feature[0].name") && e.contains("non-empty `name`"),
        "{e}"
    );

    let e = json_err(r#"{"feature": [{"name": "a", "type": "DOUBLE"}]}"#);
    assert!(
        e.contains("feature[0] (`a`)") && e.contains("INT, FLOAT or BYTES"),
        "{e}"
    );

    let e = json_err(
        r#"{"feature": [{"name": "a", "annotation": {"tag": ["categorical", "continuous"]}}]}"#,
    );
    assert!(e.contains("`a`") && e.contains("cannot both be set"), "{e}");

    let e = json_err(r#"{"feature": [{"name": "a"}, {"name": "a"}]}"#);
    assert!(
        e.contains("column `a`") && e.contains("appears twice"),
        "{e}"
    );

    let e = json_err(r#"{"feature": [{"name": "a", "intDomain": {"min": "5", "max": "1"}}]}"#);
    assert!(e.contains("min 5 is above max 1"), "{e}");

    let e = json_err(r#"{"feature": [{"name": "a", "annotation": {"extraMetadata": [3]}}]}"#);
    assert!(e.contains("annotation.extraMetadata[0]"), "{e}");
}

#[test]
fn malformed_pbtxt_errors_name_file_and_line() {
    let e = pbtxt_err("feature {\n  name: \"a\"\n  type: INT\n");
    assert!(
        e.contains("bad/schema.pbtxt:4") && e.contains("expected `}`"),
        "{e}"
    );

    let e = pbtxt_err("feature {\n  name: \"a\"\n  int_domain { max: many }\n}");
    assert!(
        e.contains("bad/schema.pbtxt:3") && e.contains("`many`"),
        "{e}"
    );

    let e = pbtxt_err("feature {\n  name: \"a\n}");
    assert!(
        e.contains("bad/schema.pbtxt:2") && e.contains("not closed"),
        "{e}"
    );

    let e = pbtxt_err("feature {\n  type: INT\n}");
    assert!(
        e.contains("bad/schema.pbtxt:1") && e.contains("no `name`"),
        "{e}"
    );

    let e = pbtxt_err(
        "feature {\n name: \"a\"\n annotation {\n  extra_metadata {\n   type_url: \"type.googleapis.com/google.protobuf.Struct\"\n   value: \"\\n\\020\"\n  }\n }\n}",
    );
    assert!(
        e.contains("bad/schema.pbtxt:6") && e.contains("not a valid binary google.protobuf.Struct"),
        "{e}"
    );

    let e = pbtxt_err("feature {\n name: \"a\"\n type: INT\n annotation { extra_metadata { value: \"\\n\\002\" dtype_item_size: 1 } }\n}");
    assert!(e.contains("bad/schema.pbtxt"), "{e}");
}

#[test]
fn missing_schema_file_is_an_io_error_naming_the_path() {
    let e = Schema::from_file("/nonexistent/schema.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/schema.json"), "{e}");
}

#[test]
fn schema_display_lists_every_column() {
    let schema = Schema::from_file(fixture("schema.pbtxt")).unwrap();
    let text = schema.to_string();
    assert_eq!(text.lines().count(), 12);
    assert!(
        text.contains("user_id") && text.contains("2633851x512"),
        "{text}"
    );
}
