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

/// Declares one or more multi-task models. See the `mtl` crate documentation for the grammar.
#[proc_macro]
pub fn mtl_model(input: TokenStream) -> TokenStream {
    let input: proc_macro2::TokenStream = input.into();
    match syn::parse2::<parse::Invocation>(input.clone()) {
        Ok(invocation) => expand(&invocation).into(),
        // A syntax error: every model whose header still reads gets the stand-in surface, so
        // the error is the only one.
        Err(e) => {
            let stand_ins = parse::parse_headers(input)
                .into_iter()
                .map(|(attrs, vis, name)| {
                    codegen::fallback(codegen::fallback::Header {
                        attrs,
                        vis,
                        name,
                        tasks: Vec::new(),
                    })
                });
            let error = e.to_compile_error();
            quote::quote!(#error #(#stand_ins)*).into()
        }
    }
}

/// Every model of the invocation: its code, or for a model with errors the stand-in surface;
/// then every error once (a mistake in a shared section would otherwise be reported by every
/// model that uses it).
fn expand(invocation: &parse::Invocation) -> proc_macro2::TokenStream {
    let mut shared_errors = check::Errors::default();
    let shared = check::shared_sections(&invocation.shared, &mut shared_errors);
    let mut errors = shared_errors.check();
    let mut items = proc_macro2::TokenStream::new();
    let mut declared: Vec<&syn::Ident> = Vec::new();
    for def in &invocation.models {
        if declared.contains(&&def.name) {
            errors.push(syn::Error::new(
                def.name.span(),
                format!(
                    "a model named `{}` is already declared above in this `mtl_model!`; rename one",
                    def.name
                ),
            ));
            continue;
        }
        declared.push(&def.name);
        let (model, model_errors) = check::resolve(def, &shared);
        let model_errors = model_errors.check();
        match model {
            Some(model) if model_errors.is_empty() => items.extend(codegen::expand(model)),
            _ => {
                errors.extend(model_errors);
                items.extend(codegen::fallback(codegen::fallback::Header {
                    attrs: def.attrs.clone(),
                    vis: def.vis.clone(),
                    name: def.name.clone(),
                    tasks: def.task_names(&shared),
                }));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert((e.to_string(), format!("{:?}", e.span()))));
    let errors = errors.iter().map(syn::Error::to_compile_error);
    quote::quote!(#(#errors)* #items)
}
