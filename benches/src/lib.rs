//! Benchmarks and the load generator live here.
