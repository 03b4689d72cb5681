//! Health state machine.
