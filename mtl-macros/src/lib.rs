//! The `mtl_model!` DSL: declarative multi-task model specs compiled into statically shaped dfdx
//! networks. Use it through the `mtl` crate (`mtl::mtl_model!`), whose docs hold the DSL
//! reference.
//!
//! Pipeline: [`parse`] (tokens → syntax tree with spans) → [`check`] (semantic checks, every
//! error collected and spanned; produces a [`model::Model`]) → [`codegen`] (the builder type,
//! network, outputs struct and runtime trait impls).

// These docs are for contributors: the crate's only public item is the macro, so its module
// links point at private items (CI builds them with `--document-private-items`).
#![allow(rustdoc::private_intra_doc_links)]

mod check;
mod codegen;
mod keywords;
mod model;
mod parse;

use proc_macro::TokenStream;

/// Declares a multi-task model. See the `mtl` crate documentation for the grammar.
#[proc_macro]
pub fn mtl_model(input: TokenStream) -> TokenStream {
    let input2: proc_macro2::TokenStream = input.into();
    let def = match syn::parse2::<parse::ModelDef>(input2.clone()) {
        Ok(def) => def,
        Err(e) => {
            let header =
                parse::parse_header(input2).map(|(attrs, vis, name)| codegen::fallback::Header {
                    attrs,
                    vis,
                    name,
                    tasks: Vec::new(),
                });
            return codegen::fallback(vec![e], header).into();
        }
    };
    let (model, errors) = check::resolve(&def);
    match model {
        Some(model) => {
            errors.check();
            codegen::expand(model).into()
        }
        None => {
            let tasks = def.task_names();
            let header = codegen::fallback::Header {
                attrs: def.attrs,
                vis: def.vis,
                name: def.name,
                tasks,
            };
            codegen::fallback(errors.check(), Some(header)).into()
        }
    }
}
