/// The arguments of a task that takes none: any positional or keyword argument is a
/// `TypeError`, as for a Python function without parameters.
///
///     let ping = CelerisTask<NoArguments, String>("ping") { _, _ in "pong" }
public struct NoArguments: Codable, Sendable, Equatable {
    /// No arguments: what a caller passes to send such a task.
    ///
    ///     try await client.send(ping, NoArguments())
    public init() {}
    private enum CodingKeys: CodingKey {}
    /// Decodes from an empty keyed container: any key present is an error (`TypeError` in a task).
    public init(from decoder: any Decoder) throws { _ = try decoder.container(keyedBy: CodingKeys.self) }
    /// Encodes as an empty keyed container: no `args`, no `kwargs`.
    public func encode(to encoder: any Encoder) throws { _ = encoder.container(keyedBy: CodingKeys.self) }
}
