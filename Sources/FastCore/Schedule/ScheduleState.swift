/// Celery's `schedstate`: whether an entry is due now and how many seconds until it
/// should be checked (or run) next.
///
///     let state = ScheduleState(isDue: true, next: 60)
public struct ScheduleState: Sendable, Equatable {
    /// The entry should be sent now.
    public let isDue: Bool
    /// Seconds until the next check / run (never negative).
    public let next: Double

    /// A state.
    ///
    ///     ScheduleState(isDue: false, next: 12.5)
    public init(isDue: Bool, next: Double) {
        self.isDue = isDue
        self.next = next
    }
}
