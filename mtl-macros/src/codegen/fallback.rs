//! What a model with errors expands to: the errors, and the model's whole surface with inert
//! bodies, so that the DSL errors are the only errors. Code that uses the model (builds it,
//! prints it, trains it, reads `INPUT_WIDTH`, `spec()` or an output field) type-checks against
//! the stand-in instead of adding follow-on errors, as thiserror's fallback does.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Ident, Visibility};

use super::{private, scope, Names};

/// The part of a model definition known even when it has errors.
pub struct Header {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    /// The task names that parsed (the outputs struct gets one field each).
    pub tasks: Vec<Ident>,
}

/// The stand-in for the model `header` names (its errors are emitted by the caller).
pub fn fallback(header: Header) -> TokenStream {
    let Header {
        attrs,
        vis,
        name,
        tasks,
    } = header;
    let p = private();
    let tp = quote!(#p::dfdx::prelude);
    let Names {
        network, outputs, ..
    } = Names::of(&name);
    let name_str = name.to_string();
    let stand_in = "unreachable: the model has errors, so the program does not compile";
    let outer_vis = vis;
    let vis = scope::inner_visibility(&outer_vis);
    let items = quote! {
        #(#attrs)*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #vis struct #name;

        impl #name {
            pub const INPUT_WIDTH: usize = 0;
            pub fn spec() -> &'static #p::spec::ModelSpec {
                <Self as #p::MtlModel>::SPEC
            }
        }

        impl #p::MtlModel for #name {
            const SPEC: &'static #p::spec::ModelSpec = &#p::spec::ModelSpec {
                name: #name_str,
                features: &[],
                input_width: 0,
                body: "",
                body_spec: #p::spec::BodySpec::Identity,
                body_width: 0,
                tasks: &[],
                schema_path: ::core::option::Option::None,
                schema_text: ::core::option::Option::None,
                loss_balancing: #p::spec::LossBalancing::Fixed,
            };
            const INPUT_WIDTH: usize = 0;
        }

        #[derive(Debug, Clone)]
        #vis struct #network<E: #tp::Dtype, D: #tp::Device<E>> {
            _types: ::core::marker::PhantomData<fn() -> (E, D)>,
        }

        #[derive(Debug, Clone)]
        #vis struct #outputs<E: #tp::Dtype, D: #tp::Device<E>, T = #tp::NoneTape> {
            #(pub #tasks: #tp::Tensor<(usize, usize), E, D, T>,)*
            _types: ::core::marker::PhantomData<fn() -> (E, D, T)>,
        }

        impl<E: #tp::Dtype, D: #tp::Device<E>> #tp::TensorCollection<E, D> for #network<E, D> {
            type To<E2: #tp::Dtype, D2: #tp::Device<E2>> = #network<E2, D2>;
            fn iter_tensors<V: #tp::ModuleVisitor<Self, E, D>>(
                visitor: &mut V,
            ) -> ::core::result::Result<::core::option::Option<Self::To<V::E2, V::D2>>, V::Err> {
                visitor.visit_fields((), |()| #network { _types: ::core::marker::PhantomData })
            }
        }

        impl<E: #tp::Dtype, D: #tp::Device<E>> #tp::BuildOnDevice<D, E> for #name {
            type Built = #network<E, D>;
            fn try_build_on_device(_: &D) -> ::core::result::Result<Self::Built, D::Err> {
                ::core::unreachable!(#stand_in)
            }
        }

        impl<S: #tp::Shape, E: #tp::Dtype, D: #tp::Device<E>, T: #tp::Tape<E, D>>
            #tp::Module<#tp::Tensor<S, E, D, T>> for #network<E, D>
        {
            type Output = #outputs<E, D, T>;
            type Error = D::Err;
            fn try_forward(&self, _: #tp::Tensor<S, E, D, T>) -> ::core::result::Result<Self::Output, D::Err> {
                ::core::unreachable!(#stand_in)
            }
        }

        impl<S: #tp::Shape, E: #tp::Dtype, D: #tp::Device<E>, T: #tp::Tape<E, D>>
            #tp::ModuleMut<#tp::Tensor<S, E, D, T>> for #network<E, D>
        {
            type Output = #outputs<E, D, T>;
            type Error = D::Err;
            fn try_forward_mut(&mut self, _: #tp::Tensor<S, E, D, T>) -> ::core::result::Result<Self::Output, D::Err> {
                ::core::unreachable!(#stand_in)
            }
        }

        impl<E: #tp::Dtype, D: #tp::Device<E>> #p::TaskNetwork<E, D> for #network<E, D> {
            fn try_forward_train(
                &mut self,
                _: #p::DynBatch<E, D, #tp::OwnedTape<E, D>>,
            ) -> ::core::result::Result<#p::TapedOutputs<E, D>, D::Err> {
                ::core::unreachable!(#stand_in)
            }
            fn try_forward_eval(
                &self,
                _: #p::DynBatch<E, D>,
            ) -> ::core::result::Result<::std::vec::Vec<#p::DynBatch<E, D>>, D::Err> {
                ::core::unreachable!(#stand_in)
            }
        }

        impl<E: #tp::Dtype, D: #tp::Device<E>> ::core::fmt::Display for #network<E, D> {
            fn fmt(&self, _: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::unreachable!(#stand_in)
            }
        }
    };
    scope::wrap(&name, &outer_vis, items)
}
