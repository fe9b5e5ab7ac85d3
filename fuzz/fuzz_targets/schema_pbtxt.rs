//! `schema.pbtxt` (TensorFlow Metadata text format, with binary `google.protobuf.Struct`
//! metadata inside): any input must give a schema or an error, never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = mtl_runtime::schema::pbtxt::from_str(&text, "fuzz.pbtxt");
});
