import Foundation

/// Celery's `apply_async` options, written into the message as Celery 5.7 writes them.
///
///     var options = SendOptions(queue: "documents", countdown: 10)
///     options.expires = .after(60)
///     let handle = try await client.send("add", args: [2, 3], options: options)
public struct SendOptions: Sendable {
    /// When a task that was not started yet is dropped (EXPIRED, revoked).
    public enum Expiry: Sendable, Equatable {
        /// At this time.
        case at(Date)
        /// This many seconds after sending.
        case after(Double)
    }

    /// The queue (default: `celery`).
    public var queue: String?
    /// The routing key. With the default (anonymous, direct) exchange Celery routes by
    /// queue name: a routing key given without a queue names the queue; the message's
    /// `routing_key` is the queue's name, as Celery writes it.
    public var routingKey: String?
    /// 0…255; Redis' priority steps (0, 3, 6, 9) as kombu maps them.
    public var priority: Int?
    /// Seconds from now before a worker may run it (Celery's `eta` header).
    public var countdown: Double?
    /// The earliest time a worker may run it (wins over `countdown`).
    public var eta: Date?
    /// When the task expires if no worker started it by then (Celery's `expires`: a
    /// worker marks it REVOKED instead of running it).
    public var expires: Expiry?
    /// No result is stored (`get` would wait for ever: use it for fire-and-forget).
    public var ignoreResult: Bool
    /// The task's id (default: a new uuid4).
    public var taskId: String?
    /// Tasks sent with this one's result when it succeeds (`embed.callbacks`).
    public var link: [Signature]
    /// Tasks sent with this one's id when it fails (`embed.errbacks`).
    public var linkError: [Signature]

    /// Options as `apply_async`'s keyword arguments (all optional).
    ///
    ///     let options = SendOptions(queue: "math", countdown: 5, expires: .after(60))
    public init(
        queue: String? = nil, routingKey: String? = nil, priority: Int? = nil, countdown: Double? = nil,
        eta: Date? = nil, expires: Expiry? = nil, ignoreResult: Bool = false, taskId: String? = nil,
        link: [Signature] = [], linkError: [Signature] = []
    ) {
        self.queue = queue
        self.routingKey = routingKey
        self.priority = priority
        self.countdown = countdown
        self.eta = eta
        self.expires = expires
        self.ignoreResult = ignoreResult
        self.taskId = taskId
        self.link = link
        self.linkError = linkError
    }

    /// The message for task `name` with these options (`now`: epoch seconds).
    func message(
        task name: String, args: [JSON], kwargs: [(key: String, value: JSON)], routes: TaskRoutes, now: Double
    ) throws(CelerisClientError.InvalidOption) -> TaskMessage {
        let queue = self.queue ?? routingKey ?? routes.queue(for: name) ?? "celery"
        guard !queue.isEmpty else { throw .init("the queue name is empty") }
        let priority = self.priority ?? 0
        guard (0...255).contains(priority) else { throw .init("priority must be from 0 to 255, not \(priority)") }
        var m = TaskMessage(
            task: name, args: args, kwargs: kwargs, queue: queue, priority: priority, id: taskId ?? TaskMessage.newId(),
            origin: SendOptions.origin)
        if let eta {
            m.eta = CeleryTime.isoformat(try Self.checked(eta.timeIntervalSince1970, "eta"))
        } else if let countdown {
            guard countdown.isFinite else { throw .init("countdown must be a finite number of seconds") }
            m.eta = CeleryTime.isoformat(try Self.checked(now + countdown, "countdown"))
        }
        switch expires {
        case .at(let date)?: m.expires = CeleryTime.isoformat(try Self.checked(date.timeIntervalSince1970, "expires"))
        case .after(let seconds)?:
            guard seconds.isFinite else { throw .init("expires must be a finite number of seconds") }
            m.expires = CeleryTime.isoformat(try Self.checked(now + seconds, "expires"))
        case nil: break
        }
        m.ignoreResult = ignoreResult
        if !link.isEmpty { m.embed = m.embed.setting("callbacks", .array(link.map(\.json))) }
        if !linkError.isEmpty { m.embed = m.embed.setting("errbacks", .array(linkError.map(\.json))) }
        return m
    }

    /// 9999-12-31T23:59:59 UTC: the last second Python's `datetime` holds (a later time
    /// raises OverflowError in `apply_async`; a worker would drop such a message).
    static let latestEpoch: Double = 253_402_300_799

    /// `epoch` when Python can hold it as a datetime (finite, year 1 to 9999).
    private static func checked(_ epoch: Double, _ option: String) throws(CelerisClientError.InvalidOption) -> Double {
        guard epoch.isFinite, epoch >= -62_135_596_800, epoch < latestEpoch + 1 else {
            throw .init("\(option) must fall between year 1 and 9999-12-31T23:59:59 UTC")
        }
        return epoch
    }

    /// The `expiration` property Celery writes when the task expires: the seconds left
    /// (0 when already past) in whole milliseconds, as text.
    func expiration(now: Double) -> String? {
        let seconds: Double
        switch expires {
        case .at(let date)?: seconds = date.timeIntervalSince1970 - now
        case .after(let s)?: seconds = s
        case nil: return nil
        }
        guard seconds.isFinite else { return nil }
        return String(Int64(exactly: (max(0, seconds) * 1000).rounded(.towardZero)) ?? Int64.max)
    }

    /// `gen<pid>@<host>`: what Celery writes as `origin` from a process that is not a worker.
    static let origin: String = {
        "gen\(ProcessInfo.processInfo.processIdentifier)@\(ProcessInfo.processInfo.hostName)"
    }()
}
