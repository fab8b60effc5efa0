import Foundation

/// A task message in Celery's protocol v2, carried in a kombu envelope.
///
/// Build one to send, or decode one a producer (Python Celery or Celeris) queued:
///
///     var m = TaskMessage(task: "add", args: [2, 3])
///     let text = m.envelope()               // what LPUSH stores
///     let back = try TaskMessage.decode(Array(text.utf8))
public struct TaskMessage: Sendable {
    /// The message's fields, shared between copies until one of them changes (a copy is
    /// one reference count, not one per string: messages are copied on their way from
    /// the claim to the executor and into the task's context).
    struct Fields {
        var id: String = ""
        var task: String = ""
        var args: [JSON] = []
        var kwargs: [(key: String, value: JSON)] = []
        var embed: JSON = TaskMessage.noEmbed
        var queue: String = "celery"
        var exchange: String = ""
        var routingKey: String = "celery"
        var priority: Int = 0
        var eta: String? = nil
        var expires: String? = nil
        var retries: Int = 0
        var timeLimit: (soft: Double?, hard: Double?) = (nil, nil)
        var rootId: String? = nil
        var parentId: String? = nil
        var group: String? = nil
        var groupIndex: Int? = nil
        var ignoreResult: Bool = false
        var replyToValue: String? = nil
        var replyToRange: Range<Int>? = nil
        var deliveryTag: String = ""
        var origin: String = ""
        var headersValue: JSON? = nil
        var headersRange: Range<Int>? = nil
        var received: [UInt8] = []
    }

    final class Storage: @unchecked Sendable {
        // Exclusivity: a message's storage is used by one thread at a time: the run-time check is pure cost.
        @exclusivity(unchecked) var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    var storage: Storage

    /// The storage, copied first if another message shares it.
    mutating func unique() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.fields) }
        return storage
    }

    public var id: String {
        get { storage.fields.id }
        _modify { yield &unique().fields.id }
    }
    public var task: String {
        get { storage.fields.task }
        _modify { yield &unique().fields.task }
    }
    public var args: [JSON] {
        get { storage.fields.args }
        _modify { yield &unique().fields.args }
    }
    public var kwargs: [(key: String, value: JSON)] {
        get { storage.fields.kwargs }
        _modify { yield &unique().fields.kwargs }
    }
    /// `{"callbacks", "errbacks", "chain", "chord"}` from the body.
    public var embed: JSON {
        get { storage.fields.embed }
        _modify { yield &unique().fields.embed }
    }
    public var queue: String {
        get { storage.fields.queue }
        _modify { yield &unique().fields.queue }
    }
    public var exchange: String {
        get { storage.fields.exchange }
        _modify { yield &unique().fields.exchange }
    }
    public var routingKey: String {
        get { storage.fields.routingKey }
        _modify { yield &unique().fields.routingKey }
    }
    public var priority: Int {
        get { storage.fields.priority }
        _modify { yield &unique().fields.priority }
    }
    public var eta: String? {
        get { storage.fields.eta }
        _modify { yield &unique().fields.eta }
    }
    public var expires: String? {
        get { storage.fields.expires }
        _modify { yield &unique().fields.expires }
    }
    public var retries: Int {
        get { storage.fields.retries }
        _modify { yield &unique().fields.retries }
    }
    public var timeLimit: (soft: Double?, hard: Double?) {
        get { storage.fields.timeLimit }
        _modify { yield &unique().fields.timeLimit }
    }
    public var rootId: String? {
        get { storage.fields.rootId }
        _modify { yield &unique().fields.rootId }
    }
    public var parentId: String? {
        get { storage.fields.parentId }
        _modify { yield &unique().fields.parentId }
    }
    public var group: String? {
        get { storage.fields.group }
        _modify { yield &unique().fields.group }
    }
    public var groupIndex: Int? {
        get { storage.fields.groupIndex }
        _modify { yield &unique().fields.groupIndex }
    }
    public var ignoreResult: Bool {
        get { storage.fields.ignoreResult }
        _modify { yield &unique().fields.ignoreResult }
    }
    private var replyToValue: String? {
        get { storage.fields.replyToValue }
        _modify { yield &unique().fields.replyToValue }
    }
    private var replyToRange: Range<Int>? {
        get { storage.fields.replyToRange }
        _modify { yield &unique().fields.replyToRange }
    }
    /// The `reply_to` property. A received message reads it from the envelope's bytes
    /// when asked (it is only re-sent, never acted on).
    public var replyTo: String {
        get {
            if let replyToValue { return replyToValue }
            guard let range = replyToRange else { return "" }
            return String(decoding: received[range], as: UTF8.self)
        }
        set {
            replyToValue = newValue
            replyToRange = nil
        }
    }
    public var deliveryTag: String {
        get { storage.fields.deliveryTag }
        _modify { yield &unique().fields.deliveryTag }
    }
    public var origin: String {
        get { storage.fields.origin }
        _modify { yield &unique().fields.origin }
    }
    /// Every header as received, so nothing a producer wrote is lost on re-send
    /// (`.null` for a message made here). A received message keeps the envelope's
    /// bytes and parses its headers only when asked (a retry, `inspect`).
    public var headers: JSON {
        get {
            if let headersValue { return headersValue }
            guard let range = headersRange else { return .null }
            return (try? JSONParser.parse(Array(received[range]))) ?? .null
        }
        set {
            headersValue = newValue
            headersRange = nil
        }
    }
    private var headersValue: JSON? {
        get { storage.fields.headersValue }
        _modify { yield &unique().fields.headersValue }
    }
    private var headersRange: Range<Int>? {
        get { storage.fields.headersRange }
        _modify { yield &unique().fields.headersRange }
    }
    /// A received message's envelope as it was queued (empty for one made here): where
    /// `headersRange` and `replyToRange` point. The worker recycles its storage for the
    /// next claim's envelopes once the task is done.
    var received: [UInt8] {
        get { storage.fields.received }
        _modify { yield &unique().fields.received }
    }

    /// Take the envelope buffer and the delivery tag out of a finished message, for the
    /// next claims to copy into (`SpareBuffers`); nil when another copy of the message
    /// shares its storage (the message is then left as it is).
    mutating func takeBuffers() -> (envelope: [UInt8], tag: String)? {
        guard isKnownUniquelyReferenced(&storage) else { return nil }
        defer {
            storage.fields.received = []
            storage.fields.deliveryTag = ""
        }
        return (storage.fields.received, storage.fields.deliveryTag)
    }

    /// A new message with fresh ids, for the default exchange.
    public init(
        task: String, args: [JSON] = [], kwargs: [(key: String, value: JSON)] = [], queue: String = "celery",
        priority: Int = 0, id: String = TaskMessage.newId(), origin: String = TaskMessage.defaultOrigin
    ) {
        var f = Fields()
        f.id = id
        f.task = task
        f.args = args
        f.kwargs = kwargs
        f.embed = ["callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil]
        f.queue = queue
        f.exchange = ""
        f.routingKey = queue
        f.priority = priority
        f.eta = nil
        f.expires = nil
        f.retries = 0
        f.timeLimit = (nil, nil)
        f.rootId = id
        f.parentId = nil
        f.group = nil
        f.groupIndex = nil
        f.ignoreResult = false
        f.replyToValue = TaskMessage.newId()
        f.deliveryTag = TaskMessage.newId()
        f.origin = origin
        storage = Storage(f)
    }

    /// A message over `storage` (a decode fills it in).
    init(storage: Storage) { self.storage = storage }

    /// A lower-case uuid4, as Celery makes task ids and delivery tags.
    public static func newId() -> String { FastUUID.v4() }

    /// `pid@host`, as Celery fills `origin`.
    public static let defaultOrigin: String = {
        "\(ProcessInfo.processInfo.processIdentifier)@\(ProcessInfo.processInfo.hostName)"
    }()

    /// The embed Celery sends when there is no canvas, shared by every such message.
    public static let noEmbed: JSON = ["callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil]
}
