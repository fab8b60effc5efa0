import CEventShim

final class SignalHandler {
    let body: (Int32) -> Void
    init(body: @escaping (Int32) -> Void) { self.body = body }
}
