//! `schema.json` (protobuf JSON): any input must give a schema or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = mtl_runtime::schema::json::from_str(&text, "fuzz.json");
});
