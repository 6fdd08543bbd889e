//! `starling-console`: the web console the admin endpoint serves at `/ui/`.
//!
//! Pages are rendered on the server from plain data ([`overview::Overview`],
//! [`group::GroupView`]) into HTML strings, with no I/O here: the broker gathers the data (and
//! filters it by the caller's ACLs), this crate only draws it. That keeps rendering testable
//! and measurable apart from the broker, and the pages readable with JavaScript disabled; a
//! small script ([`html::SCRIPT`]) only refreshes a page in place while it is open.
//!
//! - [`html`]: escaping, the page frame, number/size/duration/time formatting, the embedded
//!   stylesheet and script.
//! - [`overview`]: the broker, its topics and its groups, sortable, filterable and paged.
//! - [`group`]: one group's members, partitions with lag, and rebalance history.
//! - [`actions`]: offset resets (dry run first) and deletions, each confirmed by a POST with a
//!   CSRF token.
//! - [`topic`]: one topic's partitions, consuming groups, configs and a message browser.
//! - [`sparkline`]: small inline SVG lines of recent readings (lag histories).
//! - [`timeline`]: the SVG picture of who owned which partition over a group's rebalances.

pub mod actions;
pub mod group;
pub mod html;
pub mod overview;
pub mod sparkline;
pub mod timeline;
pub mod topic;
