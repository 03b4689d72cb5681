//! Device registry: tokens and the administrative hierarchy.
