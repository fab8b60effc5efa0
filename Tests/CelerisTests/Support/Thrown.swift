import XCTest

extension XCTestCase {
    /// What `body` threw (nil when it returned).
    ///
    ///     let error = await thrown { try await client.get(id) }
    func thrown<T>(_ body: () async throws -> T) async -> Error? {
        do {
            _ = try await body()
            return nil
        } catch {
            return error
        }
    }
}
