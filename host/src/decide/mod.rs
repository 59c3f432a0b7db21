//! How one action is decided: the [`Pipeline`] of named stages, and the published
//! [`combine`] algorithm that turns the plugins' effects into one.

mod approval;
pub mod combine;
mod pipeline;

pub use pipeline::{NoPostDecision, Pipeline, PostDecision, Recording};
