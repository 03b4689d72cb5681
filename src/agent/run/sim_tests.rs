//! Simulation tests of the whole agent loop (filled in below).
