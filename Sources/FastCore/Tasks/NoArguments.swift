/// The arguments of a task that takes none: any positional or keyword argument is a
/// `TypeError`, as for a Python function without parameters.
///
///     let ping = CelerisTask<NoArguments, String>("ping") { _, _ in "pong" }
public struct NoArguments: Codable, Sendable, Equatable {
    public init() {}
    private enum CodingKeys: CodingKey {}
    public init(from decoder: any Decoder) throws { _ = try decoder.container(keyedBy: CodingKeys.self) }
    public func encode(to encoder: any Encoder) throws { _ = encoder.container(keyedBy: CodingKeys.self) }
}
