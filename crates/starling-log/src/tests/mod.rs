//! Behaviour tests of the partition log, plus a property test.

mod append;
mod prop;
mod read;
mod recovery;
mod segments;
mod support;
