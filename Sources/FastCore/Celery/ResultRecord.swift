/// The Redis result backend's records: key `celery-task-meta-<id>`, value
/// `{"status", "result", "traceback", "children", "date_done", "task_id"}`.
///
///     let json = ResultRecord(taskId: id, state: .success, result: 5).serialized()
public struct ResultRecord: Sendable {
    public static let keyPrefix = "celery-task-meta-"
    /// How long a record lives by default (Celery's `result_expires`, 1 day).
    public static let expirySeconds = 86400
    /// The longest expiry written: 100 years (Redis refuses one whose milliseconds overflow).
    public static let maxExpirySeconds = 100 * 365 * 86400

    public var taskId: String
    public var state: TaskState
    public var result: JSON
    public var traceback: String?
    public var dateDone: Double?
    public var groupId: String?
    public var parentId: String?
    /// Seconds the record lives (SETEX); 0: it never expires (SET), as Celery with `result_expires` 0 or None.
    public var expires: Int
    /// Celery's `children`: the tasks the task sent while it ran, each as Celery serializes
    /// a result (`[[id, null], null]` for a task, `[[group_id, null], [members…]]` for a group).
    public var children: [JSON] = []

    public init(
        taskId: String, state: TaskState, result: JSON, traceback: String? = nil, dateDone: Double? = nil,
        groupId: String? = nil, parentId: String? = nil, expires: Int = ResultRecord.expirySeconds,
        children: [JSON] = []
    ) {
        self.children = children
        self.taskId = taskId
        self.state = state
        self.result = result
        self.traceback = traceback
        self.dateDone = dateDone
        self.groupId = groupId
        self.parentId = parentId
        self.expires = expires
    }

    /// `seconds` as a record's `expires`: 0 stays 0 (never), a positive value below a second is 1,
    /// any other is truncated (as Celery's `int(result_expires)`) and at most `maxExpirySeconds`;
    /// nil for a negative or non-finite value.
    ///
    ///     ResultRecord.expiry(seconds: 3600)  // 3600
    public static func expiry(seconds: Double) -> Int? {
        guard seconds.isFinite, seconds >= 0 else { return nil }
        if seconds == 0 { return 0 }
        return seconds < 1 ? 1 : Int(min(seconds, Double(maxExpirySeconds)))
    }

    /// The Redis key (and pub/sub channel) of a task's record.
    public static func key(_ taskId: String) -> String { keyPrefix + taskId }

    /// The stored JSON, fields in Celery 5.7's order, written straight as bytes.
    public func serialized() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The stored JSON's bytes, appended to `out`.
    func write(to out: inout [UInt8]) {
        out.append(ascii: #"{"status": ""#)
        out.append(utf8: state.rawValue)
        out.append(ascii: #"", "result": "#)
        result.write(to: &out)
        out.append(ascii: #", "traceback": "#)
        Self.write(traceback, to: &out)
        if children.isEmpty {
            out.append(ascii: #", "children": [], "date_done": "#)
        } else {
            out.append(ascii: #", "children": "#)
            JSON.array(children).write(to: &out)
            out.append(ascii: #", "date_done": "#)
        }
        if let dateDone {
            out.append(UInt8(ascii: "\""))
            CeleryTime.writeIsoformat(dateDone, to: &out)
            out.append(UInt8(ascii: "\""))
        } else {
            out.append(ascii: "null")
        }
        if let groupId {
            out.append(ascii: #", "group_id": "#)
            JSON.writeString(groupId, to: &out)
        }
        if let parentId {
            out.append(ascii: #", "parent_id": "#)
            JSON.writeString(parentId, to: &out)
        }
        out.append(ascii: #", "task_id": "#)
        JSON.writeString(taskId, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    /// A string or null.
    private static func write(_ s: String?, to out: inout [UInt8]) {
        if let s { JSON.writeString(s, to: &out) } else { out.append(ascii: "null") }
    }

    /// `storeCommands()` as RESP, appended to `out`: the record is serialized once,
    /// straight into `out`, and the key and expiry are written as bytes.
    ///
    ///     record.appendStoreCommands(to: &pipeline)
    public func appendStoreCommands(to out: inout [UInt8]) {
        let needed = 2 * (64 + Self.keyPrefix.utf8.count + taskId.utf8.count) + 512
        if out.capacity < out.count + needed { out.reserveCapacity(max(out.count + needed, out.capacity * 2)) }
        if expires > 0 {
            appendHead("SETEX", expiry: true, to: &out)
        } else {
            appendHead("SET", expiry: false, to: &out)
        }
        let value = appendValue(to: &out)
        appendHead("PUBLISH", expiry: false, to: &out)
        // The same bytes again, copied within `out` (grown first, so its indices hold).
        out.append(UInt8(ascii: "$"))
        RESP.decimal(value.count, to: &out)
        let at = out.count
        out.append(contentsOf: repeatElement(0, count: value.count))
        out.withUnsafeMutableBufferPointer { b in
            guard let base = b.baseAddress else { return }
            (base + at).update(from: base + value.lowerBound, count: value.count)
        }
        out.append(0x0D)
        out.append(0x0A)
    }

    /// `expirySeconds` as SETEX takes it (the usual expiry, written without a conversion).
    private static let expiryText = Array(String(expirySeconds).utf8)

    /// `name key [expiry]` of a command whose last argument (the value) follows.
    private func appendHead(_ name: StaticString, expiry: Bool, to out: inout [UInt8]) {
        RESP.appendCount(expiry ? 4 : 3, to: &out)
        RESP.appendBulk(name, to: &out)
        var id = taskId
        id.withUTF8 { RESP.appendBulk(Self.keyPrefixBytes, $0, to: &out) }
        if expiry {
            if expires == Self.expirySeconds {
                RESP.appendBulk(Self.expiryText, to: &out)
            } else {
                RESP.appendBulk(Array(String(expires).utf8), to: &out)
            }
        }
    }

    /// `keyPrefix` as bytes (a key is written as this and the id, back to back).
    private static let keyPrefixBytes = Array(keyPrefix.utf8)

    /// The record as a bulk string, serialized in place: written first, then its
    /// length line (`$n` CRLF) moved in front of it. Returns where the value's bytes are.
    private func appendValue(to out: inout [UInt8]) -> Range<Int> {
        let start = out.count
        write(to: &out)
        let length = out.count - start
        out.append(UInt8(ascii: "$"))
        RESP.decimal(length, to: &out)
        let lineLength = out.count - start - length
        out.withUnsafeMutableBufferPointer { b in
            guard let base = b.baseAddress else { return }
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: lineLength) { line in
                guard let saved = line.baseAddress else { return }
                saved.update(from: base + start + length, count: lineLength)
                (base + start + lineLength).update(from: base + start, count: length)  // overlapping: memmove
                (base + start).update(from: saved, count: lineLength)
            }
        }
        out.append(0x0D)
        out.append(0x0A)
        return (start + lineLength)..<(start + lineLength + length)
    }

    /// The commands that store and announce the record: SETEX (SET when it never expires) + PUBLISH.
    public func storeCommands() -> [[String]] {
        let key = ResultRecord.key(taskId)
        let value = serialized()
        let store = expires > 0 ? ["SETEX", key, String(expires), value] : ["SET", key, value]
        return [store, ["PUBLISH", key, value]]
    }
}
