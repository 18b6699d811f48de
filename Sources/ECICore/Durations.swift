extension Duration {
    /// The duration in seconds, for the APIs that take a `Double` (socket timeouts, Foundation's
    /// condition waits). Deadlines themselves are `ContinuousClock` instants: the one monotonic
    /// clock of ECI, which no wall-clock step moves.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
