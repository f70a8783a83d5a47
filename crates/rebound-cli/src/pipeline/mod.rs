//! `rebound run`'s config file: a `[kafka]` section, `ops_addr` and any
//! number of `[[route]]` tables (each a [`RouteSettings`](crate::route::RouteSettings)).
//! Loading interpolates `${ENV}`, parses, and checks every route, reporting
//! every error with its file, line and field.
//!
//! - `env`: `${NAME}` interpolation.
//! - `load`: [`load`], [`Pipeline`] and [`ConfigErrors`].

mod env;
mod load;

pub use load::{load, Pipeline};
