/// One periodic task, as an entry of Celery's `beat_schedule` spells it: a name, the task, when it
/// is due, the arguments and the send options, plus what to do about due times missed while no
/// scheduler ran (`catchUp`).
///
///     let entry = ScheduleEntry(name: "add-every-10s", task: "add", schedule: .interval(seconds: 10),
///                               args: [2, 3], options: .init(queue: "math", priority: 5, expires: 30))
///     let message = BeatMessage.message(for: entry, sentAt: CeleryTime.now())
public struct ScheduleEntry: Sendable, Equatable {
    /// When an entry is due.
    public enum Schedule: Sendable, Equatable {
        /// Every `seconds` (Celery's `schedule: 10` or `timedelta`), a positive finite number.
        case interval(seconds: Double)
        /// A crontab, kept as its five fields in crontab order separated by single spaces
        /// (`"*/5 * * * *"`: minute, hour, day of month, month of year, day of week) and an IANA
        /// time zone (nil: the scheduler's, UTC as Celery's default `timezone`). The fields are
        /// not parsed here: `Crontab` does that.
        case crontab(String, timezone: String?)
    }

    /// What happens to due times that passed while no scheduler was running.
    public enum CatchUp: String, Sendable, Equatable, CaseIterable {
        /// Send nothing for them: the next send is the next due time from now.
        case skip
        /// Send once for all of them at start (as Celery beat does with a persisted schedule), then
        /// go on from now.
        case once
    }

    /// The send options Celeris honours (Celery's `options` of an entry; others are refused).
    public struct SendOptions: Sendable, Equatable {
        /// The queue (and routing key) to send to; nil: `celery`.
        public var queue: String?
        /// The message priority, 0...9 (kombu's Redis range); nil: 0 and no priority sent.
        public var priority: Int?
        /// Seconds after sending at which a worker drops the task unrun (`expires` header, and
        /// kombu's `expiration` property in milliseconds), 0...`ScheduleFile.longestSeconds`.
        public var expires: Double?

        /// Options as an entry's `options` object spells them.
        ///
        ///     ScheduleEntry.SendOptions(queue: "math", priority: 5, expires: 30)
        public init(queue: String? = nil, priority: Int? = nil, expires: Double? = nil) {
            self.queue = queue
            self.priority = priority
            self.expires = expires
        }
    }

    /// The entry's name (its key in `beat_schedule`).
    public var name: String
    /// The registered task name sent in the message's `task` header.
    public var task: String
    public var schedule: Schedule
    /// Positional arguments, sent as the body's first element.
    public var args: [JSON]
    /// Keyword arguments, in the schedule's order.
    public var kwargs: [(key: String, value: JSON)]
    public var options: SendOptions
    public var catchUp: CatchUp

    /// An entry; `catchUp` defaults to `.once`, what Celery beat does for a missed run.
    ///
    ///     ScheduleEntry(name: "nightly", task: "report", schedule: .crontab("0 3 * * *", timezone: "Europe/Berlin"))
    public init(
        name: String, task: String, schedule: Schedule, args: [JSON] = [], kwargs: [(key: String, value: JSON)] = [],
        options: SendOptions = SendOptions(), catchUp: CatchUp = .once
    ) {
        self.name = name
        self.task = task
        self.schedule = schedule
        self.args = args
        self.kwargs = kwargs
        self.options = options
        self.catchUp = catchUp
    }

    /// Equal when every field is; kwargs compare in order.
    public static func == (lhs: ScheduleEntry, rhs: ScheduleEntry) -> Bool {
        lhs.name == rhs.name && lhs.task == rhs.task && lhs.schedule == rhs.schedule && lhs.args == rhs.args
            && lhs.kwargs.count == rhs.kwargs.count
            && zip(lhs.kwargs, rhs.kwargs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
            && lhs.options == rhs.options && lhs.catchUp == rhs.catchUp
    }
}
