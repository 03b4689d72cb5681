//! Binding sockets to one interface (SO_BINDTODEVICE) for the probe kinds whose
//! crates do not do it themselves.
