/// The Redis keys of the periodic-task scheduler (`celeris-beat`), all under `celeris:beat:`.
///
/// - `leader` (string, PX lease): the leading scheduler's id.
/// - `handover` (list, PX): one id pushed by a leader releasing on warm shutdown; wakes a standby.
/// - `schedulers` (zset): every scheduler's id scored by when it was last seen (ms, Redis time).
/// - `leadership` (hash): `id`, `since` (ms) and `changes` (acquisitions) of the current leader.
/// - `names` (set): the names of the entries being scheduled.
/// - `entry:<name>` (hash): `due`, `sent_at`, `task_id`, `count`, `next`, `spec`, `source`.
/// - `dynamic` (hash) and `dynamic:version` (string int): run-time entries and their change count.
///
///     let state = try redis.command("HGETALL", BeatKeys.entry("nightly"))
public enum BeatKeys {
    /// What every key starts with.
    public static let prefix = "celeris:beat:"
    /// The leader lease: the leader's id, with a PX expiry.
    public static let leader = prefix + "leader"
    /// The hand-over list a releasing leader pushes its id onto.
    public static let handover = prefix + "handover"
    /// Every scheduler's id, scored by when it was last seen (ms since the epoch, Redis time).
    public static let schedulers = prefix + "schedulers"
    /// The current leadership: `id`, `since`, `changes`.
    public static let leadership = prefix + "leadership"
    /// The names of the entries the leader schedules.
    public static let names = prefix + "names"
    /// Run-time entries: name -> entry object JSON (as a schedule file spells an entry).
    public static let dynamic = prefix + "dynamic"
    /// Incremented on every change of `dynamic`.
    public static let dynamicVersion = prefix + "dynamic:version"

    /// The state hash of the entry called `name`.
    ///
    ///     BeatKeys.entry("nightly")  // "celeris:beat:entry:nightly"
    public static func entry(_ name: String) -> String { prefix + "entry:" + name }

    /// The fields of an entry's state hash.
    public enum Field {
        /// The last due time handled (sent, or recorded as skipped), ms.
        public static let due = "due"
        /// When the last message was sent, ms (Redis time).
        public static let sentAt = "sent_at"
        /// The id of the last message sent.
        public static let taskId = "task_id"
        /// Messages sent (Celery's `total_run_count`).
        public static let count = "count"
        /// The next due time, ms.
        public static let next = "next"
        /// The entry as JSON (`ScheduleEntry.jsonObject()`).
        public static let spec = "spec"
        /// Where the entry comes from: `file` or `redis`.
        public static let source = "source"
    }
}
