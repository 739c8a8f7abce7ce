/// A fixed-seed RNG for deterministic handshakes.
pub(crate) fn rng(seed: u64) -> rand::rngs::SmallRng {
    use rand::SeedableRng;
    rand::rngs::SmallRng::seed_from_u64(seed)
}
