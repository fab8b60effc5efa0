import Foundation
import Logging

/// Where a scheduler's entries come from: a schedule file (optional) and, unless turned off, the
/// run-time entries stored in Redis (`celeris:beat:dynamic`, name → entry object JSON, with
/// `celeris:beat:dynamic:version` bumped on every change). One thread owns it.
///
/// The file is checked every `reloadInterval` seconds of the clock: its `stat` (mtime in ns, size,
/// inode) and, while its mtime is too recent to trust, its bytes. A file that stops parsing or
/// disappears keeps its previous entries, and the error is reported in `Snapshot.errors`. Dynamic
/// entries are re-read when the version changes; one that does not parse is skipped and reported;
/// a name in both the file and Redis is the file's (reported). The file's `timezone` is the
/// default zone of every crontab without its own, dynamic entries' too.
///
///     let source = ScheduleSource(file: "schedule.json", readsRedis: true, clock: SystemClock(), reloadInterval: 1)
///     var snapshot = try source.load(redis: redis)
///     if let changed = source.reloadIfChanged(redis: redis, now: clock.now()) { snapshot = changed }
public final class ScheduleSource {
    /// The entries at one moment.
    public struct Snapshot: Sendable, Equatable {
        /// The file's entries in the file's order, then the dynamic ones by name.
        public var entries: [ScheduleEntry]
        /// Entry name → `"file"` or `"redis"`.
        public var sources: [String: String]
        /// The file's top-level `timezone` (nil: none, UTC).
        public var timezone: String?
        /// What is wrong now, one line each: the file (while it does not parse or is gone; its
        /// previous entries are kept), Redis entries skipped, names both in the file and Redis.
        public var errors: [String]

        /// A snapshot.
        ///
        ///     ScheduleSource.Snapshot(entries: [], sources: [:], timezone: nil, errors: [])
        public init(entries: [ScheduleEntry], sources: [String: String], timezone: String?, errors: [String]) {
            self.entries = entries
            self.sources = sources
            self.timezone = timezone
            self.errors = errors
        }
    }

    /// The hash of run-time entries: name → entry object JSON (`BeatKeys.dynamic`).
    public static let dynamicKey = BeatKeys.dynamic
    /// Incremented on every change of `dynamicKey` (`BeatKeys.dynamicVersion`).
    public static let dynamicVersionKey = BeatKeys.dynamicVersion
    /// `Snapshot.sources` of a file entry.
    public static let fileSource = "file"
    /// `Snapshot.sources` of an entry from `dynamicKey`.
    public static let redisSource = "redis"

    /// The schedule file's path (nil: none).
    public let file: String?
    /// Whether entries are read from `dynamicKey`.
    public let readsRedis: Bool
    /// Seconds of `clock` between two checks of the file and the dynamic version.
    public let reloadInterval: Double
    private let clock: any WallClock
    private let logger: Logger

    /// The file's identity when last read (nil: not read, or gone).
    private var fingerprint: FileFingerprint?
    /// The bytes last parsed (good or bad; nil: none, or the file could not be read).
    private var fileBytes: [UInt8]?
    /// The last read's mtime was too close to its time of reading to rule out a later edit in the
    /// same timestamp: compare bytes at the next check even when `stat` is unchanged.
    private var recheckBytes = false
    private var fileEntries: [ScheduleEntry] = []
    private var fileZone: String?
    private var fileError: String?

    /// The dynamic version last read (nil: not read yet, or the last read failed).
    private var dynamicVersion: RedisValue?
    /// The dynamic hash last read, sorted by name.
    private var dynamicRaw: [(name: String, value: [UInt8])] = []
    private var dynamicError: String?

    private var lastCheck: Double?
    private var current: Snapshot?

    /// A source of `file` (nil: none) and, when `readsRedis`, the dynamic entries; checked every
    /// `reloadInterval` seconds of `clock`.
    ///
    ///     ScheduleSource(file: nil, readsRedis: true, clock: ManualClock(), reloadInterval: 1)
    public init(
        file: String?, readsRedis: Bool, clock: any WallClock, reloadInterval: Double,
        logger: Logger = Logger(label: "celeris.beat")
    ) {
        self.file = file
        self.readsRedis = readsRedis
        self.clock = clock
        self.reloadInterval = reloadInterval
        self.logger = logger
    }

    /// The first load: the file must read and parse (its error is thrown, `path` being the place
    /// inside the file); the dynamic entries are read (a Redis failure or a bad entry is reported
    /// in `errors`, and retried at the next check).
    ///
    ///     let snapshot = try source.load(redis: redis)
    public func load(redis: RedisConnection) throws(ScheduleFileError) -> Snapshot {
        if let file {
            let (stamp, bytes) = try Self.read(file)
            let parsed = try ScheduleFile.parse(bytes)
            accept(parsed, bytes: bytes, stamp: stamp)
        }
        _ = checkDynamic(redis: redis)
        lastCheck = clock.now()
        let snapshot = build()
        report(snapshot, previous: nil)
        current = snapshot
        return snapshot
    }

    /// A new snapshot when, at `now` (seconds of the clock), `reloadInterval` has passed since the
    /// last check and the file or the dynamic entries changed; nil otherwise.
    ///
    ///     if let snapshot = source.reloadIfChanged(redis: redis, now: clock.now()) { apply(snapshot) }
    public func reloadIfChanged(redis: RedisConnection, now: Double) -> Snapshot? {
        if let lastCheck, now >= lastCheck, now - lastCheck < reloadInterval { return nil }
        lastCheck = now
        let fileChanged = checkFile()
        let dynamicChanged = checkDynamic(redis: redis)
        guard fileChanged || dynamicChanged || current == nil else { return nil }
        let snapshot = build()
        guard snapshot != current else { return nil }
        report(snapshot, previous: current)
        current = snapshot
        return snapshot
    }

    // MARK: - The file

    /// Whether the file's state (entries, zone or error) may have changed.
    private func checkFile() -> Bool {
        guard let file else { return false }
        let stamp: FileFingerprint
        let bytes: [UInt8]
        do {
            guard let now = FileFingerprint(path: file) else {
                throw ScheduleFileError(path: "", message: "cannot stat \(file): \(String(cString: strerror(errno)))")
            }
            if now == fingerprint && !recheckBytes { return false }
            (stamp, bytes) = try Self.read(file)
        } catch {
            return fail("schedule file \(file) kept as last loaded: \(error)")
        }
        fingerprint = stamp
        recheckBytes = stamp.isRecent
        if bytes == fileBytes { return false }
        do {
            accept(try ScheduleFile.parse(bytes), bytes: bytes, stamp: stamp)
        } catch {
            let changed = fail("schedule file \(file) kept as last loaded: \(error)")
            fileBytes = bytes
            fingerprint = stamp
            recheckBytes = stamp.isRecent
            return changed
        }
        return true
    }

    /// Record a file error; whether it is new.
    private func fail(_ message: String) -> Bool {
        fingerprint = nil
        fileBytes = nil
        recheckBytes = false
        guard message != fileError else { return false }
        fileError = message
        return true
    }

    private func accept(_ parsed: ScheduleFile, bytes: [UInt8], stamp: FileFingerprint) {
        fileEntries = parsed.entries
        fileZone = (try? JSONParser.parse(bytes))?["timezone"]?.stringValue
        fileError = nil
        fileBytes = bytes
        fingerprint = stamp
        recheckBytes = stamp.isRecent
    }

    /// The file's stat then its bytes (at most `ScheduleFile.largestFile`).
    private static func read(_ path: String) throws(ScheduleFileError) -> (FileFingerprint, [UInt8]) {
        guard let stamp = FileFingerprint(path: path) else {
            throw ScheduleFileError(path: "", message: "cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ScheduleFileError(path: "", message: "cannot open \(path)")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: ScheduleFile.largestFile + 1) ?? Data()
        } catch {
            throw ScheduleFileError(path: "", message: "cannot read \(path): \(error)")
        }
        guard data.count <= ScheduleFile.largestFile else {
            throw ScheduleFileError(path: "", message: "\(path) is larger than \(ScheduleFile.largestFile) bytes")
        }
        return (stamp, Array(data))
    }

    // MARK: - Redis

    /// Re-read the dynamic hash when its version changed; whether anything may have changed.
    private func checkDynamic(redis: RedisConnection) -> Bool {
        guard readsRedis else { return false }
        do {
            let version = try redis.command("GET", Self.dynamicVersionKey)
            if let e = version.errorMessage { throw RedisError.reply(e) }
            if version == dynamicVersion && dynamicError == nil { return false }
            let reply = try redis.command("HGETALL", Self.dynamicKey)
            if let e = reply.errorMessage { throw RedisError.reply(e) }
            let items = reply.elements ?? []
            var raw: [(name: String, value: [UInt8])] = []
            raw.reserveCapacity(items.count / 2)
            var i = 0
            while i + 1 < items.count {
                raw.append((name: items[i].text ?? "", value: items[i + 1].bytes ?? []))
                i += 2
            }
            raw.sort { $0.name < $1.name }
            dynamicVersion = version
            let hadError = dynamicError != nil
            dynamicError = nil
            let same = raw.count == dynamicRaw.count && zip(raw, dynamicRaw).allSatisfy { $0 == $1 }
            dynamicRaw = raw
            return hadError || !same
        } catch {
            dynamicVersion = nil
            let message = "\(Self.dynamicKey) kept as last read: \(error)"
            guard message != dynamicError else { return false }
            dynamicError = message
            return true
        }
    }

    // MARK: - Snapshots

    private func build() -> Snapshot {
        var entries = fileEntries
        var sources: [String: String] = [:]
        for entry in fileEntries { sources[entry.name] = Self.fileSource }
        var errors: [String] = []
        if let fileError { errors.append(fileError) }
        if let dynamicError { errors.append(dynamicError) }
        for (name, value) in dynamicRaw {
            if sources[name] != nil {
                errors.append("\(Self.dynamicKey) entry \(name) ignored: the schedule file defines \(name)")
                continue
            }
            do {
                entries.append(try ScheduleFile.parseEntry(name: name, bytes: value, defaultZone: fileZone))
                sources[name] = Self.redisSource
            } catch {
                errors.append("\(Self.dynamicKey) entry \(name) skipped: \(error)")
            }
        }
        return Snapshot(entries: entries, sources: sources, timezone: fileZone, errors: errors)
    }

    /// Log the errors a snapshot has that the previous one did not.
    private func report(_ snapshot: Snapshot, previous: Snapshot?) {
        let known = Set(previous?.errors ?? [])
        for error in snapshot.errors where !known.contains(error) { logger.error("\(error)") }
        if previous != nil {
            logger.info("schedule reloaded: \(snapshot.entries.count) entries")
        }
    }
}

/// A file's identity for change detection: mtime (ns), size and inode.
struct FileFingerprint: Equatable {
    let seconds: Int
    let nanoseconds: Int
    let size: Int64
    let inode: UInt64
    let device: UInt64

    /// The file's `stat`, or nil (errno set).
    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        seconds = Int(st.st_mtim.tv_sec)
        nanoseconds = Int(st.st_mtim.tv_nsec)
        size = Int64(st.st_size)
        inode = UInt64(st.st_ino)
        device = UInt64(st.st_dev)
    }

    /// Modified within two seconds of now (the system's real time, as file times are): a write
    /// in the same timestamp granule could still follow unseen by `stat`.
    var isRecent: Bool {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let now = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        let mtime = Double(seconds) + Double(nanoseconds) / 1e9
        return abs(now - mtime) < 2
    }
}
